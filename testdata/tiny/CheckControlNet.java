import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Random;

/**
 * Developer check for export_controlnet.py (Python here has no onnxruntime), run as a single-file program:
 *
 * <pre>java -cp ~/.m2/repository/com/microsoft/onnxruntime/onnxruntime/1.22.0/onnxruntime-1.22.0.jar \
 *     testdata/tiny/CheckControlNet.java testdata/pipelines/tiny-sd-controlnet testdata/pipelines/tiny-sd</pre>
 *
 * 1. the ControlNet pipeline's unet with all-zero residual inputs against tiny-sd's plain unet, on seeded random
 *    inputs at two latent sizes (8x8 and 12x16: the dynamic axes work);
 * 2. the ControlNet's outputs: names and shapes, conditioning_scale 0 gives zeros, scale 2 doubles scale 1.
 * Exit code 1 when a difference exceeds 1e-4. (The trained fixture's whole reference run is replayed by
 * dev.kiln.exporter.TinyControlNetReferenceTest (JUnit).)
 */
public final class CheckControlNet {
  static OnnxTensor floats(OrtEnvironment environment, float[] values, long... shape) throws Exception {
    return OnnxTensor.createTensor(environment, FloatBuffer.wrap(values), shape);
  }

  static float[] random(Random random, int count) {
    float[] values = new float[count];
    for (int index = 0; index < count; index++) {
      values[index] = (float) random.nextGaussian();
    }
    return values;
  }

  static float[] values(OrtSession.Result result, String name) {
    FloatBuffer buffer = ((OnnxTensor) result.get(name).orElseThrow()).getFloatBuffer();
    float[] values = new float[buffer.remaining()];
    buffer.get(values);
    return values;
  }

  static double maxDifference(float[] a, float[] b) {
    double worst = 0;
    for (int index = 0; index < a.length; index++) {
      worst = Math.max(worst, Math.abs(a[index] - b[index]));
    }
    return worst;
  }

  public static void main(String[] arguments) throws Exception {
    Path pipeline = Path.of(arguments[0]);
    Path plainPipeline = Path.of(arguments[1]);
    OrtEnvironment environment = OrtEnvironment.getEnvironment();
    OrtSession.SessionOptions options = new OrtSession.SessionOptions();
    options.setIntraOpNumThreads(1);
    Random random = new Random(17);
    double worst = 0;
    try (OrtSession unet = environment.createSession(pipeline.resolve("unet/model.onnx").toString(), options);
        OrtSession plain = environment.createSession(plainPipeline.resolve("unet/model.onnx").toString(), options);
        OrtSession controlnet = environment.createSession(pipeline.resolve("controlnet/model.onnx").toString(), options)) {
      for (int[] size : new int[][] {{8, 8}, {12, 16}}) {
        int height = size[0];
        int width = size[1];
        float[] sample = random(random, 2 * 4 * height * width);
        float[] context = random(random, 2 * 77 * 64);
        float[] control = new float[2 * 3 * 64 * height * width];
        for (int index = 0; index < control.length; index++) {
          control[index] = random.nextFloat();
        }
        long[][] shapes = {{2, 32, height, width}, {2, 32, height, width},
            {2, 32, (height + 1) / 2, (width + 1) / 2}, {2, 64, (height + 1) / 2, (width + 1) / 2},
            {2, 64, (height + 1) / 2, (width + 1) / 2}};
        String[] residualNames = {"down_block_additional_residuals_0", "down_block_additional_residuals_1",
            "down_block_additional_residuals_2", "down_block_additional_residuals_3", "mid_block_additional_residual"};
        String[] outputNames = {"down_block_res_samples_0", "down_block_res_samples_1", "down_block_res_samples_2",
            "down_block_res_samples_3", "mid_block_res_sample"};
        Map<String, OnnxTensor> common = new HashMap<>();
        common.put("sample", floats(environment, sample, 2, 4, height, width));
        common.put("timestep", OnnxTensor.createTensor(environment, LongBuffer.wrap(new long[] {501}), new long[] {1}));
        common.put("encoder_hidden_states", floats(environment, context, 2, 77, 64));
        Map<String, OnnxTensor> withResiduals = new HashMap<>(common);
        for (int index = 0; index < shapes.length; index++) {
          long[] shape = shapes[index];
          withResiduals.put(residualNames[index], floats(environment, new float[(int) (shape[0] * shape[1] * shape[2] * shape[3])], shape));
        }
        try (OrtSession.Result a = plain.run(common); OrtSession.Result b = unet.run(withResiduals)) {
          double difference = maxDifference(values(a, "out_sample"), values(b, "out_sample"));
          System.out.printf("unet %dx%d, zero residuals vs tiny-sd unet: max abs diff %.3g%n", height, width, difference);
          worst = Math.max(worst, difference);
        }
        float[][] byScale = new float[3][];
        for (int scale = 0; scale <= 2; scale++) {
          Map<String, OnnxTensor> inputs = new HashMap<>(common);
          inputs.put("controlnet_cond", floats(environment, control, 2, 3, 8L * height, 8L * width));
          inputs.put("conditioning_scale", floats(environment, new float[] {scale}));
          try (OrtSession.Result result = controlnet.run(inputs)) {
            float[] all = new float[0];
            for (int index = 0; index < outputNames.length; index++) {
              long[] shape = ((OnnxTensor) result.get(outputNames[index]).orElseThrow()).getInfo().getShape();
              if (!java.util.Arrays.equals(shape, shapes[index])) {
                throw new IllegalStateException(outputNames[index] + " shape " + java.util.Arrays.toString(shape));
              }
              float[] output = values(result, outputNames[index]);
              float[] joined = java.util.Arrays.copyOf(all, all.length + output.length);
              System.arraycopy(output, 0, joined, all.length, output.length);
              all = joined;
            }
            byScale[scale] = all;
          }
        }
        double zero = maxDifference(byScale[0], new float[byScale[0].length]);
        float[] doubled = byScale[1].clone();
        double largest = 0;
        for (int index = 0; index < doubled.length; index++) {
          largest = Math.max(largest, Math.abs(doubled[index]));
          doubled[index] *= 2;
        }
        double linear = maxDifference(doubled, byScale[2]);
        System.out.printf("controlnet %dx%d: shapes ok, |outputs| max %.3g at scale 1, scale 0 max %.3g, scale 2 - 2*scale 1 %.3g%n",
            height, width, largest, zero, linear);
        worst = Math.max(worst, Math.max(zero, linear));
      }
    }
    System.out.printf("worst %.3g%n", worst);
    if (worst > 1e-4) {
      System.exit(1);
    }
  }
}
