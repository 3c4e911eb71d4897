package dev.kiln.optimizer.bench;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;

/**
 * ORT CPU latency of one UNet call, original vs optimized, in one process so both see the same machine state.
 * Not a test: bench/optimize.sh runs it. Args: ORIGINAL OPTIMIZED [LATENT_SIZE=32] [RUNS=3] [THREADS=0].
 */
public final class UnetLatencyBenchmark {
  private UnetLatencyBenchmark() {}

  public static void main(String[] args) throws OrtException {
    String original = args[0];
    String optimized = args[1];
    int latent = args.length > 2 ? Integer.parseInt(args[2]) : 32;
    int runs = args.length > 3 ? Integer.parseInt(args[3]) : 3;
    int threads = args.length > 4 ? Integer.parseInt(args[4]) : 0;
    OrtEnvironment environment = OrtEnvironment.getEnvironment();
    double[] originalTimes = time(environment, original, latent, runs, threads);
    double[] optimizedTimes = time(environment, optimized, latent, runs, threads);
    System.out.println("| model | session create (ms) | median call (ms) | calls |");
    System.out.println("|---|---|---|---|");
    System.out.printf(Locale.ROOT, "| original | %.0f | %.0f | %s |%n", originalTimes[0], originalTimes[1], runs);
    System.out.printf(Locale.ROOT, "| cpu profile | %.0f | %.0f | %s |%n", optimizedTimes[0], optimizedTimes[1], runs);
    System.out.printf(Locale.ROOT, "%nlatency ratio optimized/original: %.3f (latent %dx%d = %dpx, batch 1, 77 tokens)%n",
        optimizedTimes[1] / originalTimes[1], latent, latent, latent * 8);
  }

  /** {session creation ms, median call ms}. */
  private static double[] time(OrtEnvironment environment, String model, int latent, int runs, int threads) throws OrtException {
    try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
      options.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.BASIC_OPT);
      if (threads > 0) {
        options.setIntraOpNumThreads(threads);
      }
      long start = System.nanoTime();
      try (OrtSession session = environment.createSession(model, options)) {
        double create = (System.nanoTime() - start) / 1e6;
        Random random = new Random(1);
        float[] sample = new float[4 * latent * latent];
        for (int i = 0; i < sample.length; i++) {
          sample[i] = (float) random.nextGaussian();
        }
        int hidden = (int) ((ai.onnxruntime.TensorInfo) session.getInputInfo().get("encoder_hidden_states").getInfo()).getShape()[2];
        float[] context = new float[77 * hidden];
        for (int i = 0; i < context.length; i++) {
          context[i] = (float) random.nextGaussian();
        }
        List<Double> times = new ArrayList<>();
        try (OnnxTensor sampleTensor = OnnxTensor.createTensor(environment, FloatBuffer.wrap(sample), new long[] {1, 4, latent, latent});
            OnnxTensor timestep = OnnxTensor.createTensor(environment, LongBuffer.wrap(new long[] {500}), new long[] {1});
            OnnxTensor contextTensor = OnnxTensor.createTensor(environment, FloatBuffer.wrap(context), new long[] {1, 77, hidden})) {
          Map<String, OnnxTensor> feed = Map.of("sample", sampleTensor, "timestep", timestep, "encoder_hidden_states", contextTensor);
          for (int run = 0; run <= runs; run++) {
            long callStart = System.nanoTime();
            try (OrtSession.Result ignored = session.run(feed)) {
              if (run > 0) {
                times.add((System.nanoTime() - callStart) / 1e6);
              }
            }
          }
        }
        double[] sorted = times.stream().mapToDouble(Double::doubleValue).sorted().toArray();
        return new double[] {create, sorted[sorted.length / 2]};
      }
    }
  }

  static String describe(double[] values) {
    return Arrays.toString(values);
  }
}
