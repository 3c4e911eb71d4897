import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.nio.LongBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Runs the exported tiny-sd ONNX components in ONNX Runtime (CPU) against the Python reference outputs, and
 * replays the whole reference DDIM run from the README's math. A developer check for export.py (Python here
 * has no onnxruntime), run as a single-file program:
 *
 * <pre>java -cp ~/.m2/repository/com/microsoft/onnxruntime/onnxruntime_gpu/1.22.0/onnxruntime_gpu-1.22.0.jar \
 *     testdata/tiny/CheckOnnx.java testdata/pipelines/tiny-sd</pre>
 */
public final class CheckOnnx {
  record Array(long[] shape, float[] floats, int[] ints) {}

  static Array readNpy(Path path) throws IOException {
    ByteBuffer bytes = ByteBuffer.wrap(Files.readAllBytes(path)).order(ByteOrder.LITTLE_ENDIAN);
    bytes.position(8);
    int headerLength = bytes.getShort() & 0xFFFF;
    byte[] header = new byte[headerLength];
    bytes.get(header);
    String text = new String(header, java.nio.charset.StandardCharsets.US_ASCII);
    Matcher type = Pattern.compile("'descr': '([<|])([fi])(\\d)'").matcher(text);
    Matcher shapeText = Pattern.compile("'shape': \\(([^)]*)\\)").matcher(text);
    if (!type.find() || !shapeText.find()) {
      throw new IOException(path + ": unexpected npy header " + text);
    }
    String[] parts = shapeText.group(1).split(",");
    long[] shape = java.util.Arrays.stream(parts).map(String::trim).filter(s -> !s.isEmpty())
        .mapToLong(Long::parseLong).toArray();
    int count = (int) java.util.Arrays.stream(shape).reduce(1, (a, b) -> a * b);
    if (type.group(2).equals("f")) {
      float[] values = new float[count];
      bytes.asFloatBuffer().get(values);
      return new Array(shape, values, null);
    }
    int[] values = new int[count];
    bytes.asIntBuffer().get(values);
    return new Array(shape, null, values);
  }

  static double maxDifference(float[] a, float[] b) {
    if (a.length != b.length) {
      throw new IllegalStateException("length " + a.length + " vs " + b.length);
    }
    double worst = 0;
    for (int i = 0; i < a.length; i++) {
      worst = Math.max(worst, Math.abs(a[i] - b[i]));
    }
    return worst;
  }

  static float[] run(OrtEnvironment environment, OrtSession session, Map<String, OnnxTensor> inputs, String output)
      throws Exception {
    try (OrtSession.Result result = session.run(inputs)) {
      OnnxTensor tensor = (OnnxTensor) result.get(output).orElseThrow();
      FloatBuffer buffer = tensor.getFloatBuffer();
      float[] values = new float[buffer.remaining()];
      buffer.get(values);
      return values;
    }
  }

  public static void main(String[] arguments) throws Exception {
    Path pipeline = Path.of(arguments[0]);
    Path reference = pipeline.resolve("reference");
    String json = Files.readString(reference.resolve("reference.json"));
    Matcher scaling = Pattern.compile("\"scaling_factor\": ([0-9.eE-]+)").matcher(json);
    scaling.find();
    float scalingFactor = Float.parseFloat(scaling.group(1));
    OrtEnvironment environment = OrtEnvironment.getEnvironment();
    OrtSession.SessionOptions options = new OrtSession.SessionOptions();
    options.setIntraOpNumThreads(1);
    double worst = 0;
    try (OrtSession text = environment.createSession(pipeline.resolve("text_encoder/model.onnx").toString(), options);
        OrtSession unet = environment.createSession(pipeline.resolve("unet/model.onnx").toString(), options);
        OrtSession decoder = environment.createSession(pipeline.resolve("vae_decoder/model.onnx").toString(), options);
        OrtSession encoder = environment.createSession(pipeline.resolve("vae_encoder/model.onnx").toString(), options)) {
      Array ids = readNpy(reference.resolve("input_ids.npy"));
      Array emptyIds = readNpy(reference.resolve("uncond_input_ids.npy"));
      float[] cond;
      float[] uncond;
      try (OnnxTensor input = OnnxTensor.createTensor(environment, IntBuffer.wrap(ids.ints()), ids.shape());
          OnnxTensor emptyInput = OnnxTensor.createTensor(environment, IntBuffer.wrap(emptyIds.ints()), emptyIds.shape())) {
        cond = run(environment, text, Map.of("input_ids", input), "last_hidden_state");
        float[] pooled = run(environment, text, Map.of("input_ids", input), "pooler_output");
        uncond = run(environment, text, Map.of("input_ids", emptyInput), "last_hidden_state");
        double d1 = maxDifference(cond, readNpy(reference.resolve("last_hidden_state.npy")).floats());
        double d2 = maxDifference(pooled, readNpy(reference.resolve("pooler_output.npy")).floats());
        double d3 = maxDifference(uncond, readNpy(reference.resolve("uncond_last_hidden_state.npy")).floats());
        System.out.printf("text_encoder: last_hidden_state %.2e, pooler_output %.2e, uncond %.2e%n", d1, d2, d3);
        worst = Math.max(worst, Math.max(d1, Math.max(d2, d3)));
      }
      int hidden = cond.length / 77;
      float[] context = new float[2 * cond.length];
      System.arraycopy(uncond, 0, context, 0, uncond.length);
      System.arraycopy(cond, 0, context, uncond.length, cond.length);
      float[] latents = readNpy(reference.resolve("initial_noise.npy")).floats();
      double[] cumulative = new double[1000];
      double product = 1;
      for (int i = 0; i < 1000; i++) {
        double root = Math.sqrt(0.00085) + (Math.sqrt(0.012) - Math.sqrt(0.00085)) * i / 999.0;
        product *= 1 - root * root;
        cumulative[i] = (float) product;
      }
      float[] perStep = readNpy(reference.resolve("latents_per_step.npy")).floats();
      for (int step = 0; step < 20; step++) {
        int t = (19 - step) * 50 + 1;
        float[] doubled = new float[2 * latents.length];
        System.arraycopy(latents, 0, doubled, 0, latents.length);
        System.arraycopy(latents, 0, doubled, latents.length, latents.length);
        float[] prediction;
        try (OnnxTensor sample = OnnxTensor.createTensor(environment, FloatBuffer.wrap(doubled), new long[] {2, 4, 8, 8});
            OnnxTensor timestep = OnnxTensor.createTensor(environment, LongBuffer.wrap(new long[] {t}), new long[] {1});
            OnnxTensor states = OnnxTensor.createTensor(environment, FloatBuffer.wrap(context), new long[] {2, 77, hidden})) {
          prediction = run(environment, unet, Map.of("sample", sample, "timestep", timestep,
              "encoder_hidden_states", states), "out_sample");
        }
        if (step == 0) {
          double d = maxDifference(prediction, readNpy(reference.resolve("first_step_noise_prediction.npy")).floats());
          System.out.printf("unet first step out_sample %.2e%n", d);
          worst = Math.max(worst, d);
        }
        double alpha = cumulative[t];
        double alphaPrevious = t - 50 >= 0 ? cumulative[t - 50] : cumulative[0];
        for (int i = 0; i < latents.length; i++) {
          float eps = prediction[i] + 7.5f * (prediction[latents.length + i] - prediction[i]);
          float x0 = (float) ((latents[i] - Math.sqrt(1 - alpha) * eps) / Math.sqrt(alpha));
          latents[i] = (float) (Math.sqrt(alphaPrevious) * x0 + Math.sqrt(1 - alphaPrevious) * eps);
        }
        float[] expected = java.util.Arrays.copyOfRange(perStep, step * latents.length, (step + 1) * latents.length);
        if (step == 19) {
          System.out.printf("DDIM replay final latents %.2e%n", maxDifference(latents, expected));
        }
      }
      double dl = maxDifference(latents, readNpy(reference.resolve("final_latents.npy")).floats());
      worst = Math.max(worst, dl);
      float[] scaled = latents.clone();
      for (int i = 0; i < scaled.length; i++) {
        scaled[i] /= scalingFactor;
      }
      float[] referenceLatents = readNpy(reference.resolve("final_latents.npy")).floats();
      for (int i = 0; i < referenceLatents.length; i++) {
        referenceLatents[i] /= scalingFactor;
      }
      float[] image;
      float[] fromReferenceLatents;
      try (OnnxTensor z = OnnxTensor.createTensor(environment, FloatBuffer.wrap(scaled), new long[] {1, 4, 8, 8});
          OnnxTensor zr = OnnxTensor.createTensor(environment, FloatBuffer.wrap(referenceLatents), new long[] {1, 4, 8, 8})) {
        image = run(environment, decoder, Map.of("latent_sample", z), "sample");
        fromReferenceLatents = run(environment, decoder, Map.of("latent_sample", zr), "sample");
      }
      float[] expectedImage = readNpy(reference.resolve("image.npy")).floats();
      double di = maxDifference(fromReferenceLatents, expectedImage);
      System.out.printf("vae_decoder on reference latents %.2e; end-to-end image %.2e%n", di,
          maxDifference(image, expectedImage));
      worst = Math.max(worst, di);
      try (OnnxTensor x = OnnxTensor.createTensor(environment, FloatBuffer.wrap(expectedImage), new long[] {1, 3, 64, 64})) {
        float[] moments = run(environment, encoder, Map.of("sample", x), "latent_parameters");
        System.out.printf("vae_encoder latent_parameters: %d values%n", moments.length);
      }
    }
    System.out.printf("worst component difference %.2e%n", worst);
    if (worst > 1e-3) {
      System.exit(1);
    }
  }
}
