package dev.kiln.runner.pipeline;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtLoggingLevel;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.OrtSession.SessionOptions.OptLevel;
import dev.kiln.runner.noise.TorchGenerator;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.security.MessageDigest;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The cache of ORT-optimized CPU models, on the tiny pipeline's UNet (its size limit set to 0 so that it counts as
 * large): a cached session gives the same bytes as an uncached ALL session at 1 and 2 threads, an entry is built
 * once, the key follows the model's bytes, and staging, damaged and least recently used entries are cleaned up.
 */
class OptimizedModelCacheTest {
  static final Path UNET = ConcurrentGenerationTest.TINY.resolve("unet/model.onnx");
  static final OrtEnvironment ENVIRONMENT = OrtEnvironment.getEnvironment(OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL);

  @TempDir
  Path root;

  OptimizedModelCache cache(long minimumBytes) {
    return new OptimizedModelCache(root, OptLevel.ALL_OPT, minimumBytes, OptimizedModelCache.MAXIMUM_CACHE_BYTES, "test cpu avx2", -1);
  }

  static byte[] unetStep(OptimizedModelCache cache, int threads) throws Exception {
    try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
      options.setIntraOpNumThreads(threads);
      options.setOptimizationLevel(OptLevel.ALL_OPT);
      try (OnnxModel unet = OnnxModel.open("unet", UNET, ENVIRONMENT, options, Device.CPU, cache)) {
        Map<String, ModelInput> inputs = new HashMap<>();
        inputs.put("sample", new ModelInput(new TorchGenerator(0).randn(2 * 4 * 8 * 8), new long[] {2, 4, 8, 8}));
        inputs.put("timestep", ModelInput.doubles(new double[] {500, 500}, 2));
        inputs.put("encoder_hidden_states", new ModelInput(new TorchGenerator(1).randn(2 * 77 * 64), new long[] {2, 77, 64}));
        float[] values = unet.run(inputs, List.of()).values().iterator().next().data();
        ByteBuffer bytes = ByteBuffer.allocate(values.length * 4);
        bytes.asFloatBuffer().put(values);
        return bytes.array();
      }
    }
  }

  List<Path> entries() throws Exception {
    try (Stream<Path> children = Files.list(root)) {
      return children.filter(child -> child.getFileName().toString().matches("[0-9a-f]{64}")).toList();
    }
  }

  @Test
  void cachedSessionsGiveTheUncachedBytesAtOneAndTwoThreadsAndTheEntryIsBuiltOnce() throws Exception {
    byte[] uncached = unetStep(null, 1);
    assertArrayEquals(uncached, unetStep(null, 2));
    List<String> notices = new java.util.ArrayList<>();
    OptimizedModelCache cache = cache(0).withNotices(notices::add);
    byte[] first = unetStep(cache, 1);
    assertEquals(1, notices.size());
    assertTrue(notices.get(0).startsWith("kiln: optimizing " + UNET + " for this CPU once"), notices.get(0));
    List<Path> built = entries();
    assertEquals(1, built.size());
    Path entry = built.get(0);
    assertTrue(Files.isRegularFile(entry.resolve(OptimizedModelCache.MODEL_FILE)));
    String key = Files.readString(entry.resolve(OptimizedModelCache.KEY_FILE));
    assertTrue(key.contains("level ALL_OPT\n") && key.contains("cpu test cpu avx2\n") && key.contains("onnxruntime " + ENVIRONMENT.getVersion()), key);
    assertTrue(key.contains("model " + sha256(Files.readAllBytes(UNET))), key);
    FileTime built1 = Files.getLastModifiedTime(entry.resolve(OptimizedModelCache.MODEL_FILE));
    byte[] second = unetStep(cache, 2);
    assertEquals(1, notices.size(), "the second open reuses the entry");
    assertEquals(built, entries());
    assertEquals(built1, Files.getLastModifiedTime(entry.resolve(OptimizedModelCache.MODEL_FILE)));
    assertArrayEquals(uncached, first);
    assertArrayEquals(uncached, second);
    try (Stream<Path> children = Files.list(root)) {
      assertTrue(children.noneMatch(child -> child.getFileName().toString().startsWith(OptimizedModelCache.STAGING_PREFIX)));
    }
  }

  @Test
  void aDamagedEntryIsDiscardedAndTheOriginalOpened() throws Exception {
    OptimizedModelCache cache = cache(0);
    byte[] first = unetStep(cache, 1);
    Path entry = entries().get(0);
    Files.write(entry.resolve(OptimizedModelCache.MODEL_FILE), new byte[] {1, 2, 3, 4});
    assertArrayEquals(first, unetStep(cache, 1));
    assertFalse(Files.exists(entry));
    assertArrayEquals(first, unetStep(cache, 1));
    assertEquals(1, entries().size());
  }

  @Test
  void smallModelsModelsWithoutConvAndUnknownCpusAreNotCached() throws Exception {
    assertNull(cache(1L << 30).optimized(UNET, Set.of(), true, ENVIRONMENT));
    assertNull(cache(0).optimized(UNET, Set.of(), false, ENVIRONMENT));
    assertNull(new OptimizedModelCache(root, OptLevel.ALL_OPT, 0, 1L << 30, null, -1).optimized(UNET, Set.of(), true, ENVIRONMENT));
    assertNull(new OptimizedModelCache(root, OptLevel.ALL_OPT, 0, 1L << 30, "cpu", 1000).optimized(UNET, Set.of(), true, ENVIRONMENT),
        "less memory than the build needs");
    assertEquals(List.of(), entries());
  }

  @Test
  void theKeyFollowsTheModelBytesAndAStampIsTrustedOnlyWhileTheFileIsUnchanged() throws Exception {
    Path folder = Files.createDirectory(root.resolve("model"));
    Path model = Files.copy(UNET, folder.resolve("model.onnx"));
    OptimizedModelCache cache = new OptimizedModelCache(root.resolve("cache"), OptLevel.ALL_OPT, 0, 1L << 30, "cpu", -1);
    String fresh = cache.contentHash(model);
    assertEquals(sha256(Files.readAllBytes(model)), fresh);
    assertFalse(Files.exists(root.resolve("cache/stamps")), "a file written just now gets no stamp");
    Thread.sleep(2100);
    assertEquals(fresh, cache.contentHash(model));
    try (Stream<Path> stamps = Files.list(root.resolve("cache/stamps"))) {
      assertEquals(1, stamps.count());
    }
    String key = cache.key(model, Set.of(), ENVIRONMENT);
    byte[] bytes = Files.readAllBytes(model);
    bytes[bytes.length - 1] ^= 1;
    Files.write(model, bytes);
    String changed = cache.contentHash(model);
    assertEquals(sha256(bytes), changed);
    assertNotEquals(fresh, changed);
    assertNotEquals(key, cache.key(model, Set.of(), ENVIRONMENT));
    String changedKey = cache.key(model, Set.of(), ENVIRONMENT);
    assertNotEquals(changedKey, new OptimizedModelCache(root.resolve("cache"), OptLevel.ALL_OPT, 0, 1L << 30, "other cpu", -1)
        .key(model, Set.of(), ENVIRONMENT));
    assertNotEquals(changedKey, new OptimizedModelCache(root.resolve("cache"), OptLevel.EXTENDED_OPT, 0, 1L << 30, "cpu", -1)
        .key(model, Set.of(), ENVIRONMENT));
  }

  @Test
  void stagingOfEndedProcessesAndLeastRecentlyUsedEntriesBeyondTheLimitAreRemoved() throws Exception {
    Path abandoned = Files.createDirectories(root.resolve(OptimizedModelCache.STAGING_PREFIX + Long.MAX_VALUE + "-x"));
    Files.writeString(abandoned.resolve("model.onnx"), "partial");
    Path running = Files.createDirectories(root.resolve(OptimizedModelCache.STAGING_PREFIX + ProcessHandle.current().pid() + "-y"));
    OptimizedModelCache cache = new OptimizedModelCache(root, OptLevel.ALL_OPT, 0, 250, "cpu", -1);
    cache.removeAbandonedStaging();
    assertFalse(Files.exists(abandoned));
    assertTrue(Files.exists(running));
    Path oldest = entry("a", 100, 1000);
    Path middle = entry("b", 100, 2000);
    Path newest = entry("c", 100, 3000);
    Path justBuilt = entry("d", 100, 500);
    cache.removeLeastRecentlyUsed(justBuilt);
    assertTrue(Files.exists(justBuilt));
    assertTrue(Files.exists(newest));
    assertFalse(Files.exists(middle));
    assertFalse(Files.exists(oldest));
  }

  Path entry(String letter, int bytes, long usedMillis) throws Exception {
    Path folder = Files.createDirectories(root.resolve(letter.repeat(64)));
    Files.write(folder.resolve(OptimizedModelCache.MODEL_FILE), new byte[bytes - 1]);
    Files.writeString(folder.resolve(OptimizedModelCache.KEY_FILE), "k");
    Files.setLastModifiedTime(folder.resolve(OptimizedModelCache.KEY_FILE), FileTime.fromMillis(usedMillis));
    return folder;
  }

  static String sha256(byte[] bytes) throws Exception {
    return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
  }
}
