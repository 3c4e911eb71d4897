package dev.kiln.optimizer.bench;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.TensorInfo;
import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.util.Arrays;
import java.util.Locale;
import java.util.Map;
import java.util.Random;

/**
 * One ORT CPU measurement of a UNet: session creation time and median step latency at one latent size and one
 * session optimization level. One model per process, so the caller's /usr/bin/time gives that model's peak RSS.
 * Not a test: bench/static.sh runs it. Args: MODEL LATENT_SIZE LEVEL(ALL|EXTENDED|BASIC|NONE) STEPS THREADS.
 * Prints one line: "create_ms median_step_ms".
 */
public final class UnetStepBenchmark {
  private UnetStepBenchmark() {}

  public static void main(String[] args) throws OrtException {
    String model = args[0];
    int latent = Integer.parseInt(args[1]);
    OrtSession.SessionOptions.OptLevel level = switch (args[2]) {
      case "ALL" -> OrtSession.SessionOptions.OptLevel.ALL_OPT;
      case "EXTENDED" -> OrtSession.SessionOptions.OptLevel.EXTENDED_OPT;
      case "BASIC" -> OrtSession.SessionOptions.OptLevel.BASIC_OPT;
      case "NONE" -> OrtSession.SessionOptions.OptLevel.NO_OPT;
      default -> throw new IllegalArgumentException("level must be ALL, EXTENDED, BASIC or NONE, got " + args[2]);
    };
    int steps = Integer.parseInt(args[3]);
    int threads = Integer.parseInt(args[4]);
    OrtEnvironment environment = OrtEnvironment.getEnvironment();
    try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
      options.setOptimizationLevel(level);
      options.setIntraOpNumThreads(threads);
      options.setInterOpNumThreads(1);
      long start = System.nanoTime();
      try (OrtSession session = environment.createSession(model, options)) {
        double create = (System.nanoTime() - start) / 1e6;
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
        System.out.printf(Locale.ROOT, "%.0f %.0f%n", create, times[steps / 2]);
      }
    }
  }
}
