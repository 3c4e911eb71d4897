package dev.kiln.exporter;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import dev.kiln.testdata.Fixtures;
import dev.kiln.testdata.ImageJudge;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * The trained tiny ControlNet fixture (testdata/pipelines/tiny-sd-controlnet, made by testdata/tiny/export_controlnet.py):
 * its ONNX ControlNet and residual UNet in ONNX Runtime replay the Python reference run (DDIM 20 steps, guidance 7.5,
 * a star's mask as control) step by step. (Kiln's own export of the TorchScript twins in
 * tiny-sd-controlnet-torchscript needs the exporter to know the controlnet component and the UNet's residual inputs.)
 */
class TinyControlNetReferenceTest {
  static final String[] DOWN = {"down_block_res_samples_0", "down_block_res_samples_1", "down_block_res_samples_2",
      "down_block_res_samples_3"};
  static final String[] RESIDUALS = {"down_block_additional_residuals_0", "down_block_additional_residuals_1",
      "down_block_additional_residuals_2", "down_block_additional_residuals_3"};

  record Npy(long[] shape, float[] floats) {
    static Npy read(Path path) throws IOException {
      ByteBuffer bytes = ByteBuffer.wrap(Files.readAllBytes(path)).order(ByteOrder.LITTLE_ENDIAN);
      bytes.position(8);
      byte[] header = new byte[bytes.getShort() & 0xFFFF];
      bytes.get(header);
      String text = new String(header, StandardCharsets.US_ASCII);
      Matcher shape = Pattern.compile("'shape': \\(([^)]*)\\)").matcher(text);
      assertTrue(text.contains("'descr': '<f4'") && text.contains("'fortran_order': False") && shape.find(),
          path + ": expected little-endian float32 in C order, header " + text);
      long[] dims = Arrays.stream(shape.group(1).split(",")).map(String::trim).filter(s -> !s.isEmpty())
          .mapToLong(Long::parseLong).toArray();
      float[] values = new float[(int) Arrays.stream(dims).reduce(1, (a, b) -> a * b)];
      bytes.asFloatBuffer().get(values);
      return new Npy(dims, values);
    }
  }

  static double maxDifference(float[] expected, float[] actual) {
    assertEquals(expected.length, actual.length);
    double worst = 0;
    for (int index = 0; index < expected.length; index++) {
      worst = Math.max(worst, Math.abs(expected[index] - actual[index]));
    }
    return worst;
  }

  static double maxAbs(float[] values) {
    double largest = 0;
    for (float value : values) {
      largest = Math.max(largest, Math.abs(value));
    }
    return largest;
  }

  static float[] concat(float[] first, float[] second) {
    float[] joined = Arrays.copyOf(first, first.length + second.length);
    System.arraycopy(second, 0, joined, first.length, second.length);
    return joined;
  }

  static float[] values(OrtSession.Result result, String name) {
    FloatBuffer buffer = ((OnnxTensor) result.get(name).orElseThrow()).getFloatBuffer();
    float[] values = new float[buffer.remaining()];
    buffer.get(values);
    return values;
  }

  @Test
  void onnxRuntimeReplaysTheControlNetReferenceRun() throws Exception {
    Path pipeline = Fixtures.pipeline("tiny-sd-controlnet");
    Path reference = pipeline.resolve("reference");
    String json = Files.readString(reference.resolve("reference.json"));
    Matcher scalingMatch = Pattern.compile("\"scaling_factor\": ([0-9.eE-]+)").matcher(json);
    assertTrue(scalingMatch.find(), "reference.json has no scaling_factor");
    float scalingFactor = Float.parseFloat(scalingMatch.group(1));
    float[] cond = Npy.read(reference.resolve("last_hidden_state.npy")).floats();
    float[] uncond = Npy.read(reference.resolve("uncond_last_hidden_state.npy")).floats();
    float[] context = concat(uncond, cond);
    Npy control = Npy.read(reference.resolve("controlnet_cond.npy"));
    assertArrayEquals(new long[] {1, 3, 64, 64}, control.shape());
    float[] controlBoth = concat(control.floats(), control.floats());
    float[] latents = Npy.read(reference.resolve("initial_noise.npy")).floats();
    float[] perStep = Npy.read(reference.resolve("latents_per_step.npy")).floats();
    double[] cumulative = new double[1000];
    double product = 1;
    for (int i = 0; i < 1000; i++) {
      double root = Math.sqrt(0.00085) + (Math.sqrt(0.012) - Math.sqrt(0.00085)) * i / 999.0;
      product *= 1 - root * root;
      cumulative[i] = (float) product;
    }
    OrtEnvironment environment = OrtEnvironment.getEnvironment();
    double worstStep = 0;
    double residualDifference = 0;
    double residualSize = 0;
    try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
      options.setIntraOpNumThreads(1);
      try (OrtSession controlnet = environment.createSession(pipeline.resolve("controlnet/model.onnx").toString(), options);
          OrtSession unet = environment.createSession(pipeline.resolve("unet/model.onnx").toString(), options);
          OrtSession decoder = environment.createSession(pipeline.resolve("vae_decoder/model.onnx").toString(), options)) {
        for (int step = 0; step < 20; step++) {
          int t = (19 - step) * 50 + 1;
          float[] doubled = concat(latents, latents);
          float[] prediction;
          List<OnnxTensor> owned = new ArrayList<>();
          try {
            OnnxTensor sample = track(owned, OnnxTensor.createTensor(environment, FloatBuffer.wrap(doubled), new long[] {2, 4, 8, 8}));
            OnnxTensor timestep = track(owned, OnnxTensor.createTensor(environment, LongBuffer.wrap(new long[] {t}), new long[] {1}));
            OnnxTensor states = track(owned, OnnxTensor.createTensor(environment, FloatBuffer.wrap(context), new long[] {2, 77, 64}));
            OnnxTensor image = track(owned, OnnxTensor.createTensor(environment, FloatBuffer.wrap(controlBoth), new long[] {2, 3, 64, 64}));
            OnnxTensor scale = track(owned, OnnxTensor.createTensor(environment, FloatBuffer.wrap(new float[] {1f}), new long[] {}));
            Map<String, OnnxTensor> unetInputs = new HashMap<>(Map.of("sample", sample, "timestep", timestep,
                "encoder_hidden_states", states));
            try (OrtSession.Result residuals = controlnet.run(Map.of("sample", sample, "timestep", timestep,
                "encoder_hidden_states", states, "controlnet_cond", image, "conditioning_scale", scale))) {
              for (int index = 0; index < DOWN.length; index++) {
                OnnxTensor tensor = (OnnxTensor) residuals.get(DOWN[index]).orElseThrow();
                unetInputs.put(RESIDUALS[index], tensor);
                if (step == 0) {
                  float[] expected = Npy.read(reference.resolve("first_step_" + DOWN[index] + ".npy")).floats();
                  residualDifference = Math.max(residualDifference, maxDifference(expected, values(residuals, DOWN[index])));
                  residualSize = Math.max(residualSize, maxAbs(expected));
                }
              }
              unetInputs.put("mid_block_additional_residual", (OnnxTensor) residuals.get("mid_block_res_sample").orElseThrow());
              if (step == 0) {
                float[] expected = Npy.read(reference.resolve("first_step_mid_block_res_sample.npy")).floats();
                residualDifference = Math.max(residualDifference, maxDifference(expected, values(residuals, "mid_block_res_sample")));
                residualSize = Math.max(residualSize, maxAbs(expected));
              }
              try (OrtSession.Result result = unet.run(unetInputs)) {
                prediction = values(result, "out_sample");
              }
            }
          } finally {
            for (OnnxTensor tensor : owned) {
              tensor.close();
            }
          }
          if (step == 0) {
            double difference = maxDifference(Npy.read(reference.resolve("first_step_noise_prediction.npy")).floats(), prediction);
            assertTrue(difference < 1e-4, "first step out_sample differs by " + difference);
          }
          double alpha = cumulative[t];
          double alphaPrevious = t - 50 >= 0 ? cumulative[t - 50] : cumulative[0];
          for (int i = 0; i < latents.length; i++) {
            float eps = prediction[i] + 7.5f * (prediction[latents.length + i] - prediction[i]);
            float x0 = (float) ((latents[i] - Math.sqrt(1 - alpha) * eps) / Math.sqrt(alpha));
            latents[i] = (float) (Math.sqrt(alphaPrevious) * x0 + Math.sqrt(1 - alphaPrevious) * eps);
          }
          worstStep = Math.max(worstStep, maxDifference(
              Arrays.copyOfRange(perStep, step * latents.length, (step + 1) * latents.length), latents));
        }
        // the trained ControlNet's residuals are far from zero: the test would notice an untrained export
        assertTrue(residualSize > 0.05, "first-step residuals max |x| " + residualSize);
        assertTrue(residualDifference < 1e-4, "first-step ControlNet outputs differ by " + residualDifference);
        assertTrue(worstStep < 2e-4, "latents differ from the reference by up to " + worstStep);
        float[] scaled = latents.clone();
        for (int i = 0; i < scaled.length; i++) {
          scaled[i] /= scalingFactor;
        }
        try (OnnxTensor z = OnnxTensor.createTensor(environment, FloatBuffer.wrap(scaled), new long[] {1, 4, 8, 8});
            OrtSession.Result result = decoder.run(Map.of("latent_sample", z))) {
          float[] image = values(result, "sample");
          double imageDifference = maxDifference(Npy.read(reference.resolve("image.npy")).floats(), image);
          System.out.printf("tiny controlnet replay: residuals %.3g (max |x| %.3g), latents %.3g, image %.3g%n",
              residualDifference, residualSize, worstStep, imageDifference);
          assertTrue(imageDifference < 1e-3, "final image differs by " + imageDifference);
          ImageJudge.Verdict verdict = ImageJudge.judgePlanar(image, 64, 64);
          assertTrue(verdict.shows(ImageJudge.Colour.BLUE, ImageJudge.Shape.TRIANGLE), verdict.toString());
          double[] shape = foregroundCentroid(image);
          double[] target = maskCentroid(control.floats());
          double distance = Math.hypot(shape[0] - target[0], shape[1] - target[1]);
          System.out.printf("control centroid (%.2f, %.2f), generated shape's (%.2f, %.2f): %.2f px%n", target[0],
              target[1], shape[0], shape[1], distance);
          // where the control puts it (without the control the evaluation's shapes land 11.5-18.6 px from it)
          assertTrue(distance <= 8, "the shape is " + distance + " px from the control's centroid");
        }
      }
    }
  }

  /** Centroid (x, y; pixel centres at +0.5) of the control mask's first channel, weighted by its values. */
  static double[] maskCentroid(float[] control) {
    double sum = 0;
    double x = 0;
    double y = 0;
    for (int index = 0; index < 64 * 64; index++) {
      sum += control[index];
      x += control[index] * (index % 64 + 0.5);
      y += control[index] * (index / 64 + 0.5);
    }
    return new double[] {x / sum, y / sum};
  }

  /**
   * Centroid of the pixels far from the background (the border's median colour), thresholded as the judge does:
   * distance > max(40, half the largest distance). The image [3, 64, 64] is in [-1, 1].
   */
  static double[] foregroundCentroid(float[] image) {
    int plane = 64 * 64;
    double[] background = new double[3];
    for (int channel = 0; channel < 3; channel++) {
      List<Double> border = new ArrayList<>();
      for (int index = 0; index < plane; index++) {
        int column = index % 64;
        int row = index / 64;
        if (row < 2 || row >= 62 || column < 2 || column >= 62) {
          border.add((double) Math.round(Math.min(1, Math.max(0, image[channel * plane + index] / 2 + 0.5)) * 255));
        }
      }
      border.sort(null);
      background[channel] = border.get((border.size() - 1) / 2);
    }
    double[] distance = new double[plane];
    double largest = 0;
    for (int index = 0; index < plane; index++) {
      double squares = 0;
      for (int channel = 0; channel < 3; channel++) {
        double pixel = Math.round(Math.min(1, Math.max(0, image[channel * plane + index] / 2 + 0.5)) * 255);
        squares += (pixel - background[channel]) * (pixel - background[channel]);
      }
      distance[index] = Math.sqrt(squares);
      largest = Math.max(largest, distance[index]);
    }
    double threshold = Math.max(40, 0.5 * largest);
    double count = 0;
    double x = 0;
    double y = 0;
    for (int index = 0; index < plane; index++) {
      if (distance[index] > threshold) {
        count++;
        x += index % 64 + 0.5;
        y += index / 64 + 0.5;
      }
    }
    assertTrue(count >= 12, "no foreground in the generated image");
    return new double[] {x / count, y / count};
  }

  private static OnnxTensor track(List<OnnxTensor> owned, OnnxTensor tensor) {
    owned.add(tensor);
    return tensor;
  }
}
