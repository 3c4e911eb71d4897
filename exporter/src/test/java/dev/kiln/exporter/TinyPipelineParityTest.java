package dev.kiln.exporter;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.graph.DataType;
import dev.kiln.graph.ModelWriter;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import dev.kiln.testdata.Fixtures;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The trained tiny pipeline: each TorchScript component exported by Kiln against torch.onnx.export's committed ONNX
 * of the same module, both in ONNX Runtime, on seeded inputs at two shapes.
 */
class TinyPipelineParityTest {
  @TempDir static Path folder;

  @ParameterizedTest(name = "{0} batch {1} size {2}")
  @CsvSource({"text_encoder,1,77", "text_encoder,2,16", "unet,2,8", "unet,1,12", "vae_decoder,1,8", "vae_decoder,2,6",
      "vae_encoder,1,64", "vae_encoder,2,32"})
  void matchesTorchOnnxExport(String component, int batch, int size) throws Exception {
    Path pipeline = Fixtures.pipeline("tiny-sd-torchscript");
    Path reference = Fixtures.pipeline("tiny-sd").resolve(component).resolve("model.onnx");
    ExportResult result = TorchScriptExporter.export(pipeline.resolve(component).resolve("model.pt"), component, 17);
    Path model = folder.resolve(component + "-" + batch + "-" + size + ".onnx");
    ModelWriter.write(result.model(), model);
    List<String> names = result.model().graph().inputs().stream().map(Value::name).toList();
    List<Tensor> inputs = new ArrayList<>();
    Random random = new Random(batch * 100 + size);
    for (String name : names) {
      inputs.add(switch (name) {
        case "input_ids" -> ints(new long[] {batch, size}, random, 600);
        case "sample" -> floats(component.equals("unet") ? new long[] {batch, 4, size, size} : new long[] {batch, 3, size, size}, random);
        case "timestep" -> longs(new long[] {1}, 951);
        case "encoder_hidden_states" -> floats(new long[] {batch, 77, 64}, random);
        case "latent_sample" -> floats(new long[] {batch, 4, size, size}, random);
        default -> throw new AssertionError(name);
      });
    }
    Map<String, float[]> expected = OrtRun.run(reference, names, inputs);
    Map<String, float[]> actual = OrtRun.run(model, names, inputs);
    double error = OrtRun.maxRelativeError(expected, actual);
    System.out.printf("tiny %s batch %d size %d: %.3g%n", component, batch, size, error);
    assertTrue(error <= 1e-5, component + ": max relative error " + error);
  }

  private static Tensor floats(long[] dims, Random random) {
    int count = 1;
    for (long dim : dims) {
      count *= (int) dim;
    }
    float[] values = new float[count];
    for (int index = 0; index < count; index++) {
      values[index] = (float) random.nextGaussian();
    }
    return Tensor.ofFloats(dims, values);
  }

  private static Tensor ints(long[] dims, Random random, int bound) {
    int count = (int) (dims[0] * dims[1]);
    int[] values = new int[count];
    for (int index = 0; index < count; index++) {
      values[index] = random.nextInt(bound);
    }
    return Tensor.ofInts(dims, values);
  }

  private static Tensor longs(long[] dims, long value) {
    return Tensor.ofLongs(dims, value);
  }

  static DataType unused() {
    return DataType.FLOAT;
  }
}
