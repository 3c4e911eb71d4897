package dev.kiln.runner.pipeline;

import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtLoggingLevel;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.OrtSession.SessionOptions.OptLevel;
import dev.kiln.runner.noise.TorchGenerator;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Stream;

/**
 * Session creation and one UNet step of a full-size UNet at EXTENDED, at ALL (the runner's CPU level) uncached, and
 * at ALL through {@link OptimizedModelCache} (cold: building the entry; warm: opening it, with and without the
 * hash stamps), at each thread count, with the output's hash to show which settings give the same bytes.
 * Run by bench/session-start.sh; not a unit test. Arguments: UNET_DIR LATENT_SIZE THREADS...
 */
public final class SessionStartBenchmark {
  private SessionStartBenchmark() {}

  public static void main(String[] arguments) throws Exception {
    Path model = Path.of(arguments[0]).resolve("model.onnx");
    int latent = Integer.parseInt(arguments[1]);
    List<Integer> threadCounts = Stream.of(arguments).skip(2).map(Integer::parseInt).toList();
    OrtEnvironment environment = OrtEnvironment.getEnvironment(OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL);
    Path cacheRoot = OptimizedModelCache.cacheRoot().resolve("bench-session-start-" + ProcessHandle.current().pid());
    OptimizedModelCache cache = new OptimizedModelCache(cacheRoot, OptLevel.ALL_OPT, OptimizedModelCache.MINIMUM_MODEL_BYTES,
        OptimizedModelCache.MAXIMUM_CACHE_BYTES, OptimizedModelCache.cpuFeatures(Path.of("/proc/cpuinfo")), -1);
    System.out.printf(Locale.ROOT, "## Session start, %s, batch 2, %dx%d latents, ORT %s CPU, %d cores%n%n", model, latent, latent,
        environment.getVersion(), Runtime.getRuntime().availableProcessors());
    System.out.println("| level | threads | create s | create cpu s | step ms | step cpu s | load avg | output sha-256 |");
    System.out.println("|---|---:|---:|---:|---:|---:|---:|---|");
    try {
      for (int threads : threadCounts) {
        measure(environment, model, latent, threads, OptLevel.EXTENDED_OPT, null, "EXTENDED");
        measure(environment, model, latent, threads, OptLevel.ALL_OPT, null, "ALL, uncached");
        if (threads == threadCounts.get(0)) {
          measure(environment, model, latent, threads, OptLevel.ALL_OPT, cache, "ALL, cache cold (builds the entry)");
          deleteTree(cacheRoot.resolve("stamps"));
          measure(environment, model, latent, threads, OptLevel.ALL_OPT, cache, "ALL, cache warm, no stamps (hashes 3.4 GB)");
        }
        measure(environment, model, latent, threads, OptLevel.ALL_OPT, cache, "ALL, cache warm");
      }
    } finally {
      deleteTree(cacheRoot);
    }
  }

  static double cpuSeconds() {
    return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean()).getProcessCpuTime() / 1e9;
  }

  static String load() throws Exception {
    return Files.readString(Path.of("/proc/loadavg")).split(" ")[0];
  }

  static void measure(OrtEnvironment environment, Path model, int latent, int threads, OptLevel level, OptimizedModelCache cache, String label)
      throws Exception {
    try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
      options.setIntraOpNumThreads(threads);
      options.setOptimizationLevel(level);
      String loadBefore = load();
      double cpuBefore = cpuSeconds();
      try (OnnxModel unet = OnnxModel.open("unet", model, environment, options, Device.CPU, cache)) {
        double createCpu = cpuSeconds() - cpuBefore;
        Map<String, ModelInput> inputs = new HashMap<>();
        inputs.put("sample", new ModelInput(new TorchGenerator(0).randn(2 * 4 * latent * latent), new long[] {2, 4, latent, latent}));
        long[] timestepShape = unet.inputShape("timestep");
        inputs.put("timestep", timestepShape.length == 0 ? ModelInput.doubles(new double[] {500}) : ModelInput.doubles(new double[] {500, 500}, 2));
        inputs.put("encoder_hidden_states", new ModelInput(new TorchGenerator(1).randn(2 * 77 * 768), new long[] {2, 77, 768}));
        String output = unet.outputs().keySet().iterator().next();
        double stepCpuBefore = cpuSeconds();
        long start = System.nanoTime();
        float[] values = unet.run(inputs, List.of(output)).get(output).data();
        double stepMs = (System.nanoTime() - start) / 1e6;
        double stepCpu = cpuSeconds() - stepCpuBefore;
        ByteBuffer bytes = ByteBuffer.allocate(values.length * 4);
        bytes.asFloatBuffer().put(values);
        System.out.printf(Locale.ROOT, "| %s | %d | %.1f | %.1f | %.0f | %.1f | %s | %s |%n", label, threads, unet.creationNanos() / 1e9, createCpu,
            stepMs, stepCpu, loadBefore + " / " + load(), OptimizedModelCache.sha256(bytes.array()).substring(0, 16));
      }
    }
  }

  static void deleteTree(Path folder) throws Exception {
    if (!Files.exists(folder)) {
      return;
    }
    try (Stream<Path> paths = Files.walk(folder)) {
      for (Path path : paths.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(path);
      }
    }
  }
}
