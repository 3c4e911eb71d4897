package dev.kiln.validator.bench;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.TensorInfo;
import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;

/**
 * One UNet on ONNX Runtime CPU in a process of its own (so bench/int8.sh can read its peak RSS): session creation,
 * then per latent size one warm-up call and the median of the timed calls, batch 1, 77 tokens. Prints one JSON line.
 * Not a test: bench/int8.sh runs it. Args: MODEL THREADS LATENTS(comma separated) CALLS [basic|extended|all].
 * The default level is extended, the runner's: it includes ORT's QDQ fusions that turn QuantizeLinear/
 * DequantizeLinear pairs into int8 kernels.
 */
public final class UnetStepBenchmark {
  private UnetStepBenchmark() {}

  public static void main(String[] args) throws OrtException {
    String model = args[0];
    int threads = Integer.parseInt(args[1]);
    String[] latents = args[2].split(",");
    int calls = Integer.parseInt(args[3]);
    String level = args.length > 4 ? args[4] : "extended";
    OrtEnvironment environment = OrtEnvironment.getEnvironment();
    try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
      options.setOptimizationLevel(switch (level) {
        case "basic" -> OrtSession.SessionOptions.OptLevel.BASIC_OPT;
        case "all" -> OrtSession.SessionOptions.OptLevel.ALL_OPT;
        default -> OrtSession.SessionOptions.OptLevel.EXTENDED_OPT;
      });
      options.setIntraOpNumThreads(threads);
      options.setInterOpNumThreads(1);
      long start = System.nanoTime();
      try (OrtSession session = environment.createSession(model, options)) {
        double create = (System.nanoTime() - start) / 1e6;
        StringBuilder steps = new StringBuilder();
        for (String latentText : latents) {
          int latent = Integer.parseInt(latentText);
          double median = medianCall(environment, session, latent, calls);
          steps.append(steps.length() == 0 ? "" : ", ").append(String.format(Locale.ROOT, "\"%d\": %.1f", latent, median));
        }
        System.out.printf(Locale.ROOT, "{\"createMs\": %.0f, \"stepMs\": {%s}}%n", create, steps);
      }
    }
  }

  private static double medianCall(OrtEnvironment environment, OrtSession session, int latent, int calls) throws OrtException {
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
    List<Double> times = new ArrayList<>();
    try (OnnxTensor sampleTensor = OnnxTensor.createTensor(environment, FloatBuffer.wrap(sample), new long[] {1, 4, latent, latent});
        OnnxTensor timestep = OnnxTensor.createTensor(environment, LongBuffer.wrap(new long[] {500}), new long[] {1});
        OnnxTensor contextTensor = OnnxTensor.createTensor(environment, FloatBuffer.wrap(context), new long[] {1, 77, hidden})) {
      Map<String, OnnxTensor> feed = Map.of("sample", sampleTensor, "timestep", timestep, "encoder_hidden_states", contextTensor);
      for (int call = 0; call <= calls; call++) {
        long start = System.nanoTime();
        try (OrtSession.Result ignored = session.run(feed)) {
          if (call > 0) {
            times.add((System.nanoTime() - start) / 1e6);
          }
        }
      }
    }
    return times.stream().mapToDouble(Double::doubleValue).sorted().toArray()[times.size() / 2];
  }
}
