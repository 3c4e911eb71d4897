package dev.kiln.optimizer.bench;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.TensorInfo;
import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;

/**
 * One ORT CPU measurement of a UNet: session creation time and, per latent size, the median step latency after one
 * uncounted warm-up step (batch 1, 77 tokens), at one session optimization level. One model per process, so the
 * caller's /usr/bin/time gives that model's peak RSS. Not a test: bench/static.sh and bench/int8.sh compile and run
 * it. Args: MODEL LATENT_SIZES(comma separated) LEVEL(ALL|EXTENDED|BASIC|NONE) STEPS THREADS [json].
 * Prints one line: "create_ms median_step_ms..." (one median per latent size), or with {@code json}
 * {"createMs": c, "stepMs": {"LATENT": m, ...}}.
 */
public final class UnetStepBenchmark {
  private UnetStepBenchmark() {}

  public static void main(String[] args) throws OrtException {
    String model = args[0];
    String[] latents = args[1].split(",");
    OrtSession.SessionOptions.OptLevel level = switch (args[2].toUpperCase(Locale.ROOT)) {
      case "ALL" -> OrtSession.SessionOptions.OptLevel.ALL_OPT;
      case "EXTENDED" -> OrtSession.SessionOptions.OptLevel.EXTENDED_OPT;
      case "BASIC" -> OrtSession.SessionOptions.OptLevel.BASIC_OPT;
      case "NONE" -> OrtSession.SessionOptions.OptLevel.NO_OPT;
      default -> throw new IllegalArgumentException("level must be ALL, EXTENDED, BASIC or NONE, got " + args[2]);
    };
    int steps = Integer.parseInt(args[3]);
    int threads = Integer.parseInt(args[4]);
    boolean json = args.length > 5 && args[5].equals("json");
    OrtEnvironment environment = OrtEnvironment.getEnvironment();
    try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
      options.setOptimizationLevel(level);
      options.setIntraOpNumThreads(threads);
      options.setInterOpNumThreads(1);
      long start = System.nanoTime();
      try (OrtSession session = environment.createSession(model, options)) {
        double create = (System.nanoTime() - start) / 1e6;
        List<String> medians = new ArrayList<>();
        for (String latent : latents) {
          double median = medianStep(environment, session, Integer.parseInt(latent), steps);
          medians.add(json ? String.format(Locale.ROOT, "\"%s\": %.1f", latent, median)
              : String.format(Locale.ROOT, "%.0f", median));
        }
        System.out.println(json
            ? String.format(Locale.ROOT, "{\"createMs\": %.0f, \"stepMs\": {%s}}", create, String.join(", ", medians))
            : String.format(Locale.ROOT, "%.0f %s", create, String.join(" ", medians)));
      }
    }
  }

  private static double medianStep(OrtEnvironment environment, OrtSession session, int latent, int steps)
      throws OrtException {
    Random random = new Random(1);
    float[] sample = new float[4 * latent * latent];
    for (int i = 0; i < sample.length; i++) {
      sample[i] = (float) random.nextGaussian();
    }
    int hidden = (int) ((TensorInfo) session.getInputInfo().get("encoder_hidden_states").getInfo()).getShape()[2];
    float[] context = new float[77 * hidden];
    for (int i = 0; i < context.length; i++) {
      context[i] = (float) random.nextGaussian();
    }
    double[] times = new double[steps];
    try (OnnxTensor sampleTensor = OnnxTensor.createTensor(environment, FloatBuffer.wrap(sample), new long[] {1, 4, latent, latent});
        OnnxTensor timestep = OnnxTensor.createTensor(environment, LongBuffer.wrap(new long[] {500}), new long[] {1});
        OnnxTensor contextTensor = OnnxTensor.createTensor(environment, FloatBuffer.wrap(context), new long[] {1, 77, hidden})) {
      Map<String, OnnxTensor> feed = Map.of("sample", sampleTensor, "timestep", timestep, "encoder_hidden_states", contextTensor);
      // Step 0 warms ORT's allocator arena and kernel caches; it is not counted.
      for (int step = 0; step <= steps; step++) {
        long stepStart = System.nanoTime();
        try (OrtSession.Result ignored = session.run(feed)) {
          if (step > 0) {
            times[step - 1] = (System.nanoTime() - stepStart) / 1e6;
          }
        }
      }
    }
    Arrays.sort(times);
    return times[steps / 2];
  }
}
