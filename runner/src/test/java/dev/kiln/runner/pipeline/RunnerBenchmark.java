package dev.kiln.runner.pipeline;

import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import dev.kiln.runner.noise.TorchGenerator;
import dev.kiln.runner.scheduler.SchedulerKind;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Per-stage latency of a pipeline (median over runs) and, when present, one full-size SD 1.5 UNet step.
 * Run by bench/runner.sh; not a unit test (timings never gate the build).
 * Arguments: PIPELINE_DIR RUNS [SD15_UNET_DIR SIZE THREADS [PIPELINE_SIZE]] (PIPELINE_SIZE 0 = the pipeline's default)
 */
public final class RunnerBenchmark {
  private RunnerBenchmark() {}

  static double median(List<Double> values) {
    double[] sorted = values.stream().mapToDouble(Double::doubleValue).sorted().toArray();
    int middle = sorted.length / 2;
    return sorted.length % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
  }

  public static void main(String[] arguments) throws Exception {
    Path pipeline = Path.of(arguments[0]);
    int runs = Integer.parseInt(arguments[1]);
    int threads = arguments.length > 4 ? Integer.parseInt(arguments[4]) : 0;
    Integer pipelineSize = arguments.length > 5 && Integer.parseInt(arguments[5]) > 0 ? Integer.parseInt(arguments[5]) : null;
    System.out.printf(Locale.ROOT, "## Pipeline %s — %s, CPU, %d intra-op threads, DDIM 20 steps, guidance 7.5, median of %d runs (after 1 warm-up)%n%n",
        pipeline.getFileName(), pipelineSize == null ? "default size" : pipelineSize + "x" + pipelineSize,
        threads > 0 ? threads : Runtime.getRuntime().availableProcessors(), runs);
    Map<String, List<Double>> samples = new LinkedHashMap<>();
    long openStart = System.nanoTime();
    try (StableDiffusionPipeline runner = StableDiffusionPipeline.open(PipelineFolder.open(pipeline), Device.CPU, threads, System.err::println)) {
      double openMs = (System.nanoTime() - openStart) / 1e6;
      GenerationRequest request = GenerationRequest.of("a red circle on a white background", 0).withScheduler(SchedulerKind.DDIM).withSteps(20)
          .withSize(pipelineSize, pipelineSize);
      runner.generate(request);
      for (int run = 0; run < runs; run++) {
        long start = System.nanoTime();
        GenerationResult result = runner.generate(request.withSeed(run));
        double total = (System.nanoTime() - start) / 1e6;
        StageTimings timings = result.timings();
        samples.computeIfAbsent("tokenize (2 prompts)", key -> new ArrayList<>()).add(timings.total("tokenize"));
        samples.computeIfAbsent("text encoder (2 prompts)", key -> new ArrayList<>()).add(timings.total("text_encoder"));
        samples.computeIfAbsent("unet step (batch 2, CFG)", key -> new ArrayList<>()).addAll(timings.stages().get("unet_step"));
        samples.computeIfAbsent("vae decoder", key -> new ArrayList<>()).add(timings.total("vae_decoder"));
        samples.computeIfAbsent("generation total", key -> new ArrayList<>()).add(total);
      }
      System.out.println("| stage | median ms | min ms | max ms |");
      System.out.println("|---|---:|---:|---:|");
      System.out.printf(Locale.ROOT, "| open pipeline (all sessions, once) | %.1f | | |%n", openMs);
      for (Map.Entry<String, List<Double>> entry : runner.loadTimings().stages().entrySet()) {
        System.out.printf(Locale.ROOT, "| &nbsp; session %s | %.1f | | |%n", entry.getKey().substring("load_".length()), entry.getValue().get(0));
      }
      for (Map.Entry<String, List<Double>> entry : samples.entrySet()) {
        List<Double> values = entry.getValue();
        System.out.printf(Locale.ROOT, "| %s | %.2f | %.2f | %.2f |%n", entry.getKey(), median(values),
            values.stream().mapToDouble(Double::doubleValue).min().orElse(0), values.stream().mapToDouble(Double::doubleValue).max().orElse(0));
      }
    }
    if (arguments.length > 2) {
      unetStep(Path.of(arguments[2]), Integer.parseInt(arguments[3]), threads, Math.max(1, Math.min(runs, 3)));
    }
  }

  /** One SD 1.5 UNet step (batch 2 for CFG) at SIZE x SIZE pixels, the optimization level the runner uses on the CPU. */
  static void unetStep(Path folder, int size, int threads, int runs) throws Exception {
    Path model = folder.resolve("model.onnx");
    System.out.println();
    if (!Files.isRegularFile(model)) {
      System.out.println("## SD 1.5 UNet step: skipped — " + model + " does not exist.");
      System.out.println("Generate the full-size random-weight SD 1.5 UNet (860M parameters, fp32, ONNX + TorchScript, ~6.9 GB, a few minutes) with");
      System.out.println("  /usr/bin/python3 testdata/generator/fullsize_unet.py " + folder);
      System.out.println("then rerun.");
      return;
    }
    OrtEnvironment environment = OrtEnvironment.getEnvironment();
    try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
      options.setIntraOpNumThreads(threads > 0 ? threads : Runtime.getRuntime().availableProcessors());
      options.setOptimizationLevel(ThreadIndependentOptimization.levelFor(Device.CPU));
      try (OnnxModel unet = OnnxModel.open("unet", model, environment, options)) {
        int latent = size / 8;
        long[] contextShape = unet.inputShape("encoder_hidden_states");
        int width = contextShape[2] > 0 ? (int) contextShape[2] : 768;
        float[] sample = new TorchGenerator(0).randn(2 * 4 * latent * latent);
        float[] context = new TorchGenerator(1).randn(2 * 77 * width);
        Map<String, ModelInput> inputs = new HashMap<>();
        inputs.put("sample", new ModelInput(sample, new long[] {2, 4, latent, latent}));
        long[] timestepShape = unet.inputShape("timestep");
        inputs.put("timestep", timestepShape.length == 0 ? ModelInput.doubles(new double[] {500})
            : ModelInput.doubles(timestepShape[0] == 1 ? new double[] {500} : new double[] {500, 500}, timestepShape[0] == 1 ? 1 : 2));
        inputs.put("encoder_hidden_states", new ModelInput(context, new long[] {2, 77, width}));
        String output = unet.outputs().keySet().iterator().next();
        List<Double> times = new ArrayList<>();
        float[] ortOutput = null;
        for (int run = 0; run <= runs; run++) {
          long start = System.nanoTime();
          ortOutput = unet.run(inputs, List.of(output)).get(output).data();
          if (run > 0) {
            times.add((System.nanoTime() - start) / 1e6);
          }
        }
        System.out.printf(Locale.ROOT, "## SD 1.5 UNet (%s), %dx%d, batch 2, ORT CPU %s, median of %d (after 1 warm-up)%n%n", folder, size, size, ThreadIndependentOptimization.levelFor(Device.CPU), runs);
        System.out.println("| measure | ms |");
        System.out.println("|---|---:|");
        System.out.printf(Locale.ROOT, "| session creation | %.0f |%n", unet.creationNanos() / 1e6);
        System.out.printf(Locale.ROOT, "| one UNet step (median) | %.0f |%n", median(times));
        System.out.printf(Locale.ROOT, "| all steps | %s |%n", Arrays.toString(times.stream().mapToLong(Math::round).toArray()));
        Path torchScript = folder.resolve("model.pt");
        if (!Files.isRegularFile(torchScript)) {
          System.out.println("\nlibtorch (DJL): skipped, " + torchScript + " is missing; create it with");
          System.out.println("  /usr/bin/python3 testdata/generator/fullsize_unet.py " + folder + "   (writes model.onnx and model.pt together)");
          return;
        }
        double[] libtorch = LibtorchUnetStep.run(torchScript, size, width, runs, ortOutput);
        List<Double> libtorchTimes = new ArrayList<>();
        for (int index = 2; index < libtorch.length; index++) {
          libtorchTimes.add(libtorch[index]);
        }
        double ortMedian = median(times);
        double libtorchMedian = median(libtorchTimes);
        System.out.printf(Locale.ROOT, "%n## Same UNet step, ORT vs libtorch 2.7.1 (DJL 0.35.1, TorchScript traced by torch 1.13), %dx%d batch 2%n%n", size, size);
        System.out.println("| runtime | session/model load ms | step median ms | steps ms |");
        System.out.println("|---|---:|---:|---|");
        System.out.printf(Locale.ROOT, "| ONNX Runtime 1.22 CPU, %d threads | %.0f | %.0f | %s |%n",
            threads > 0 ? threads : Runtime.getRuntime().availableProcessors(), unet.creationNanos() / 1e6, ortMedian,
            Arrays.toString(times.stream().mapToLong(Math::round).toArray()));
        System.out.printf(Locale.ROOT, "| libtorch (DJL) CPU, %s threads | %.0f | %.0f | %s |%n", System.getProperty("ai.djl.pytorch.num_threads", "?"),
            libtorch[0], libtorchMedian,
            Arrays.toString(libtorchTimes.stream().mapToLong(Math::round).toArray()));
        System.out.printf(Locale.ROOT, "%nratio ORT / libtorch step time: %.2f (below 1 = ORT faster); max |ORT - libtorch| output difference %.2e%n",
            ortMedian / libtorchMedian, libtorch[1]);
      }
    }
  }
}
