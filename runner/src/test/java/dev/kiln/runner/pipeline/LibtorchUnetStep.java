package dev.kiln.runner.pipeline;

import ai.djl.inference.Predictor;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.repository.zoo.Criteria;
import ai.djl.repository.zoo.ZooModel;
import dev.kiln.runner.noise.TorchGenerator;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The libtorch side of the benchmark: the same SD 1.5 UNet, traced to TorchScript with the same weights,
 * one step through DJL's PyTorch engine (offline, libtorch 2.7.1 from Maven Central). Returns the step times.
 */
final class LibtorchUnetStep {
  private LibtorchUnetStep() {}

  /** {creation ms, step ms...}; also checks the output against ORT's for the same input. */
  static double[] run(Path torchScript, int size, int contextWidth, int runs, float[] ortOutput) throws Exception {
    int latent = size / 8;
    float[] sample = new TorchGenerator(0).randn(2 * 4 * latent * latent);
    float[] context = new TorchGenerator(1).randn(2 * 77 * contextWidth);
    long start = System.nanoTime();
    Criteria<NDList, NDList> criteria = Criteria.builder().setTypes(NDList.class, NDList.class)
        .optModelPath(torchScript).optEngine("PyTorch").build();
    try (ZooModel<NDList, NDList> model = criteria.loadModel(); Predictor<NDList, NDList> predictor = model.newPredictor()) {
      double creation = (System.nanoTime() - start) / 1e6;
      List<Double> times = new ArrayList<>();
      float[] output = null;
      // TorchScript's profiling executor specialises the graph during the first two calls: both are warm-up.
      for (int run = 0; run < runs + 2; run++) {
        try (NDManager manager = model.getNDManager().newSubManager()) {
          NDList inputs = new NDList(manager.create(sample, new Shape(2, 4, latent, latent)), manager.create(new long[] {500, 500}),
              manager.create(context, new Shape(2, 77, contextWidth)));
          long stepStart = System.nanoTime();
          NDList result = predictor.predict(inputs);
          NDArray first = result.get(0);
          output = first.toFloatArray();
          if (run >= 2) {
            times.add((System.nanoTime() - stepStart) / 1e6);
          }
        }
      }
      double worst = 0;
      if (ortOutput != null && output != null) {
        for (int index = 0; index < output.length; index++) {
          worst = Math.max(worst, Math.abs(output[index] - ortOutput[index]));
        }
      }
      double[] result = new double[times.size() + 2];
      result[0] = creation;
      result[1] = worst;
      for (int index = 0; index < times.size(); index++) {
        result[index + 2] = times.get(index);
      }
      return result;
    }
  }

  /** Smoke check on any TorchScript UNet: TORCHSCRIPT SIZE CONTEXT_WIDTH. */
  public static void main(String[] arguments) throws Exception {
    double[] result = run(Path.of(arguments[0]), Integer.parseInt(arguments[1]), Integer.parseInt(arguments[2]), 2, null);
    System.out.println(java.util.Arrays.toString(result));
  }
}
