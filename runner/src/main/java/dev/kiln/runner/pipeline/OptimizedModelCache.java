package dev.kiln.runner.pipeline;

import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.OrtSession.SessionOptions.OptLevel;
import dev.kiln.common.KilnCache;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.FileTime;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import java.util.function.Consumer;
import java.util.stream.Stream;

/**
 * ONNX Runtime's optimized copies of large CPU models, kept in {@code $KILN_CACHE/ort-optimized} (default
 * {@code ~/.cache/kiln/ort-optimized}), so that a session at {@link ThreadIndependentOptimization}'s level opens at
 * about EXTENDED's cost from the second time on.
 *
 * <p>Why: the layout pass that level ALL adds (ORT's NchwcTransformer, the one that makes Conv results independent
 * of the thread count) reads every Conv weight out of the model's external data, reorders it into a new in-memory
 * initializer, and the session then copies every initializer into its arena instead of mapping the data file. For
 * the full-size SD 1.5 UNet (2.4 GB of its 3.4 GB are Conv weights) that is 7-11 s on an idle 2-core machine and
 * about a minute under load, against 1.2-1.5 s at EXTENDED. Saved by ORT (its optimized-model file, the reordered
 * weights in an external data file) and opened again at the same level, the graph has no plain Conv left for the
 * pass to convert and the weights are mapped: 1.2 s, with outputs byte-identical to the uncached session's at 1 and
 * 2 threads (bench/session-start.sh, runner/README.md).
 *
 * <p>An entry is keyed by SHA-256 over everything that decides the optimized graph: the model file's and each of
 * its external data files' bytes, ORT's version, the level, and the operating system, architecture and CPU feature
 * flags (the NCHWc block size and the kernels ORT picks follow the CPU, so a copy made on one machine is never used
 * on another). Hashing 3.4 GB takes about 2.5 s, so a file's hash is remembered in a stamp next to its path,
 * device, inode, size, modification and change times, and trusted only while all of them are unchanged (the
 * change time cannot be set back by copying tools; a stamp is written only for files that were not modified while
 * or shortly before they were hashed). Where those attributes cannot be read, every open hashes.
 *
 * <p>An entry is built in a staging folder named after the building process and moved into place with one
 * rename, so a killed build never leaves a partial entry; staging folders of processes that no longer run are
 * removed by the next build. After a build the least recently used entries beyond {@link #MAXIMUM_CACHE_BYTES}
 * are removed. Anything that goes wrong (too little disk space or memory to build, no CPU flags, a failed
 * build) only means the original model is opened as before. {@code KILN_ORT_CACHE=off} turns the cache off.
 */
final class OptimizedModelCache {
  /** Below this (model file and external data together) ALL costs about half a second more than EXTENDED or less (the UNet's 5-9 s for 3.4 GB, scaled). */
  static final long MINIMUM_MODEL_BYTES = 256L << 20;
  static final long MAXIMUM_CACHE_BYTES = 16L << 30;
  /**
   * Building needs the ALL session and ORT's serialized copy at once: 8.4 GB peak for the 3.4 GB UNet (2.4x);
   * with less memory available than this many times the model's bytes the original is opened uncached.
   */
  static final int BUILD_MEMORY_FACTOR = 3;
  /** The copy is about as large as the model; it is not made when it would leave less than as much again free. */
  static final int DISK_SPACE_FACTOR = 2;
  static final String MODEL_FILE = "model.onnx";
  static final String DATA_FILE = "model.onnx.data";
  static final String KEY_FILE = "key.txt";
  static final String STAGING_PREFIX = ".staging-";
  private static final String STAMPS = "stamps";
  private static final int FORMAT = 1;
  /** A file changed less than this long before it was hashed may still be being written: no stamp for it. */
  private static final long SETTLED_MILLIS = 2000;

  /** A cached optimized model: the file to open and the entry folder holding it. */
  record Entry(Path model, Path folder) {}

  private final Path root;
  private final OptLevel level;
  private final long minimumModelBytes;
  private final long maximumCacheBytes;
  private final String cpuFeatures;
  private final long availableMemory;
  private volatile Consumer<String> notices = line -> {};

  OptimizedModelCache(Path root, OptLevel level, long minimumModelBytes, long maximumCacheBytes, String cpuFeatures, long availableMemory) {
    this.root = root;
    this.level = level;
    this.minimumModelBytes = minimumModelBytes;
    this.maximumCacheBytes = maximumCacheBytes;
    this.cpuFeatures = cpuFeatures;
    this.availableMemory = availableMemory;
  }

  /** The cache for sessions at {@code level} in $KILN_CACHE (or ~/.cache/kiln), or null when KILN_ORT_CACHE=off. */
  static OptimizedModelCache standard(OptLevel level) {
    String switchValue = System.getenv("KILN_ORT_CACHE");
    if (switchValue != null && (switchValue.equalsIgnoreCase("off") || switchValue.equals("0") || switchValue.equalsIgnoreCase("false"))) {
      return null;
    }
    return new OptimizedModelCache(cacheRoot().resolve("ort-optimized"), level, MINIMUM_MODEL_BYTES, MAXIMUM_CACHE_BYTES,
        cpuFeatures(Path.of("/proc/cpuinfo")), availableMemory(Path.of("/proc/meminfo")));
  }

  /** Tells {@code notices} one line before each build (it takes a few times a normal start, once). */
  OptimizedModelCache withNotices(Consumer<String> notices) {
    this.notices = notices;
    return this;
  }

  /** KilnCache's root ($KILN_CACHE, else ~/.cache/kiln), which the CLI's bundle cache shares. */
  static Path cacheRoot() {
    return KilnCache.root();
  }

  /** The sorted feature flags of the first processor in a Linux cpuinfo file, with its OS and architecture; null if unknown. */
  static String cpuFeatures(Path cpuinfo) {
    try (Stream<String> lines = Files.lines(cpuinfo, StandardCharsets.ISO_8859_1)) {
      Optional<String> flags = lines.filter(line -> line.startsWith("flags") || line.startsWith("Features"))
          .map(line -> line.substring(line.indexOf(':') + 1).trim()).filter(line -> !line.isEmpty()).findFirst();
      return flags.map(value -> System.getProperty("os.name") + " " + System.getProperty("os.arch") + " "
          + String.join(" ", Stream.of(value.split("\\s+")).sorted().toList())).orElse(null);
    } catch (IOException | UncheckedIOException e) {
      return null;
    }
  }

  /** MemAvailable of a Linux meminfo file in bytes; -1 if unknown. */
  static long availableMemory(Path meminfo) {
    try (Stream<String> lines = Files.lines(meminfo, StandardCharsets.ISO_8859_1)) {
      return lines.filter(line -> line.startsWith("MemAvailable:")).findFirst()
          .map(line -> Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024).orElse(-1L);
    } catch (IOException | UncheckedIOException | NumberFormatException e) {
      return -1;
    }
  }

  /**
   * The optimized copy of {@code model} (whose tensors use {@code externalFiles}), built now when missing; null when
   * the model is not worth caching (smaller than the minimum, or no Conv for the layout pass to reorder), the CPU's
   * features are unknown, memory is short, or building fails: the caller then opens the original.
   */
  Entry optimized(Path model, Set<Path> externalFiles, boolean hasConv, OrtEnvironment environment) {
    if (!hasConv || cpuFeatures == null) {
      return null;
    }
    try {
      long bytes = Files.size(model);
      for (Path file : externalFiles) {
        bytes += Files.size(file);
      }
      if (bytes < minimumModelBytes) {
        return null;
      }
      String key = key(model, externalFiles, environment);
      Path folder = root.resolve(sha256(key.getBytes(StandardCharsets.UTF_8)));
      Entry entry = new Entry(folder.resolve(MODEL_FILE), folder);
      if (Files.isRegularFile(entry.model())) {
        try {
          // Marks the entry as recently used for removeLeastRecentlyUsed; a read-only cache is still used.
          Files.setLastModifiedTime(folder.resolve(KEY_FILE), FileTime.fromMillis(System.currentTimeMillis()));
        } catch (IOException e) {
          // keeps its old time
        }
        return entry;
      }
      if (availableMemory >= 0 && availableMemory < BUILD_MEMORY_FACTOR * bytes) {
        return null;
      }
      Files.createDirectories(root);
      if (Files.getFileStore(root).getUsableSpace() < DISK_SPACE_FACTOR * bytes) {
        return null;
      }
      return build(model, key, entry, environment);
    } catch (IOException | UncheckedIOException e) {
      return null;
    }
  }

  /** Removes an entry ORT could not open (damaged on disk), so that the next open builds it again. */
  void discard(Entry entry) {
    deleteTree(entry.folder());
  }

  /** The text the entry's name is the SHA-256 of; kept in the entry as key.txt. */
  String key(Path model, Set<Path> externalFiles, OrtEnvironment environment) throws IOException {
    StringBuilder key = new StringBuilder();
    key.append("kiln ort-optimized ").append(FORMAT).append('\n');
    key.append("onnxruntime ").append(environment.getVersion()).append('\n');
    key.append("level ").append(level).append('\n');
    key.append("cpu ").append(cpuFeatures).append('\n');
    key.append("model ").append(contentHash(model)).append('\n');
    Path folder = model.toAbsolutePath().getParent().toRealPath();
    for (Path file : externalFiles) {
      Path name = file.startsWith(folder) ? folder.relativize(file) : file.getFileName();
      key.append("data ").append(name.toString().replace('\\', '/')).append(' ').append(contentHash(file)).append('\n');
    }
    return key.toString();
  }

  private Entry build(Path model, String key, Entry entry, OrtEnvironment environment) {
    removeAbandonedStaging();
    Path staging = root.resolve(STAGING_PREFIX + ProcessHandle.current().pid() + "-" + UUID.randomUUID());
    notices.accept("kiln: optimizing " + model + " for this CPU once (ONNX Runtime's layout pass); later runs open the copy in "
        + entry.folder());
    try {
      Files.createDirectories(staging);
      try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
        // Graph optimization does not use the intra-op pool; one thread keeps the build light.
        options.setIntraOpNumThreads(1);
        options.setOptimizationLevel(level);
        options.setOptimizedModelFilePath(staging.resolve(MODEL_FILE).toString());
        options.addConfigEntry("session.optimized_model_external_initializers_file_name", DATA_FILE);
        options.addConfigEntry("session.optimized_model_external_initializers_min_size_in_bytes", "1024");
        environment.createSession(model.toString(), options).close();
      }
      if (!Files.isRegularFile(staging.resolve(MODEL_FILE))) {
        deleteTree(staging);
        return null;
      }
      Files.writeString(staging.resolve(KEY_FILE), key, StandardCharsets.UTF_8);
      try {
        Files.move(staging, entry.folder(), StandardCopyOption.ATOMIC_MOVE);
      } catch (AtomicMoveNotSupportedException e) {
        deleteTree(staging);
        return null;
      } catch (IOException e) {
        // Another process built the same entry first (the rename found a full folder): use theirs.
        deleteTree(staging);
      }
      if (!Files.isRegularFile(entry.model())) {
        return null;
      }
      removeLeastRecentlyUsed(entry.folder());
      return entry;
    } catch (OrtException | IOException | RuntimeException e) {
      deleteTree(staging);
      return null;
    }
  }

  /** Staging folders whose building process no longer runs (killed mid-build). */
  void removeAbandonedStaging() {
    try (Stream<Path> children = Files.list(root)) {
      for (Path child : children.toList()) {
        String name = child.getFileName().toString();
        if (!name.startsWith(STAGING_PREFIX)) {
          continue;
        }
        String pid = name.substring(STAGING_PREFIX.length()).split("-", 2)[0];
        boolean running;
        try {
          running = ProcessHandle.of(Long.parseLong(pid)).map(ProcessHandle::isAlive).orElse(false);
        } catch (NumberFormatException e) {
          running = false;
        }
        if (!running) {
          deleteTree(child);
        }
      }
    } catch (IOException | UncheckedIOException e) {
      // nothing to clean, or not readable: the next build tries again
    }
  }

  /** Keeps the most recently used entries (key.txt's time) up to the byte limit; {@code keep} always stays. */
  void removeLeastRecentlyUsed(Path keep) {
    record Used(Path folder, long time, long bytes) {}
    List<Used> entries = new ArrayList<>();
    try (Stream<Path> children = Files.list(root)) {
      for (Path child : children.toList()) {
        if (!child.getFileName().toString().matches("[0-9a-f]{64}") || !Files.isRegularFile(child.resolve(KEY_FILE))) {
          continue;
        }
        long bytes = 0;
        try (Stream<Path> files = Files.list(child)) {
          for (Path file : files.toList()) {
            bytes += Files.size(file);
          }
        }
        entries.add(new Used(child, Files.getLastModifiedTime(child.resolve(KEY_FILE)).toMillis(), bytes));
      }
    } catch (IOException | UncheckedIOException e) {
      return;
    }
    entries.sort(Comparator.comparingLong(Used::time).reversed());
    long total = entries.stream().filter(used -> used.folder().equals(keep)).mapToLong(Used::bytes).sum();
    for (Used used : entries) {
      if (used.folder().equals(keep)) {
        continue;
      }
      total += used.bytes();
      if (total > maximumCacheBytes) {
        deleteTree(used.folder());
      }
    }
  }

  /** SHA-256 of a file's bytes, from its stamp when the file provably did not change since it was hashed. */
  String contentHash(Path file) throws IOException {
    Path real = file.toRealPath();
    Path stamp = root.resolve(STAMPS).resolve(sha256(real.toString().getBytes(StandardCharsets.UTF_8)));
    long now = System.currentTimeMillis();
    String before = attributes(real);
    if (before != null && Files.isRegularFile(stamp)) {
      List<String> lines = Files.readAllLines(stamp, StandardCharsets.UTF_8);
      if (lines.size() == 3 && lines.get(0).equals(real.toString()) && lines.get(1).equals(before) && lines.get(2).matches("[0-9a-f]{64}")) {
        return lines.get(2);
      }
    }
    String hash = hashBytes(real);
    String after = attributes(real);
    if (before != null && before.equals(after) && settled(real, now)) {
      try {
        Files.createDirectories(stamp.getParent());
        Path temporary = stamp.resolveSibling(stamp.getFileName() + ".tmp-" + ProcessHandle.current().pid());
        Files.writeString(temporary, real + "\n" + after + "\n" + hash + "\n", StandardCharsets.UTF_8);
        Files.move(temporary, stamp, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
      } catch (IOException e) {
        // no stamp: the next open hashes again
      }
    }
    return hash;
  }

  /** Device, inode, size, modification and change time in nanoseconds; null where the file system does not say. */
  private static String attributes(Path file) {
    try {
      Map<String, Object> unix = Files.readAttributes(file, "unix:dev,ino,size,lastModifiedTime,ctime");
      return unix.get("dev") + " " + unix.get("ino") + " " + unix.get("size") + " "
          + nanos(unix.get("lastModifiedTime")) + " " + nanos(unix.get("ctime"));
    } catch (IOException | UnsupportedOperationException | IllegalArgumentException e) {
      return null;
    }
  }

  private static String nanos(Object time) {
    FileTime fileTime = (FileTime) time;
    return fileTime.toInstant().getEpochSecond() + "." + String.format("%09d", fileTime.toInstant().getNano());
  }

  private static boolean settled(Path file, long now) {
    try {
      Map<String, Object> unix = Files.readAttributes(file, "unix:lastModifiedTime,ctime");
      return ((FileTime) unix.get("lastModifiedTime")).toMillis() < now - SETTLED_MILLIS && ((FileTime) unix.get("ctime")).toMillis() < now - SETTLED_MILLIS;
    } catch (IOException | UnsupportedOperationException | IllegalArgumentException e) {
      return false;
    }
  }

  private static String hashBytes(Path file) throws IOException {
    MessageDigest digest = sha256Digest();
    ByteBuffer buffer = ByteBuffer.allocateDirect(4 << 20);
    try (FileChannel channel = FileChannel.open(file)) {
      while (channel.read(buffer) >= 0) {
        buffer.flip();
        digest.update(buffer);
        buffer.clear();
      }
    }
    return HexFormat.of().formatHex(digest.digest());
  }

  static String sha256(byte[] bytes) {
    return HexFormat.of().formatHex(sha256Digest().digest(bytes));
  }

  private static MessageDigest sha256Digest() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("the JDK has no SHA-256", e);
    }
  }

  private static void deleteTree(Path folder) {
    try (Stream<Path> paths = Files.walk(folder)) {
      for (Path path : paths.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(path);
      }
    } catch (IOException | UncheckedIOException e) {
      // left for the next build's cleanup (staging) or the next failed open (entries)
    }
  }
}
