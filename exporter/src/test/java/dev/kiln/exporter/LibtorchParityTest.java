package dev.kiln.exporter;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.inference.Predictor;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.repository.zoo.Criteria;
import ai.djl.repository.zoo.ZooModel;
import dev.kiln.graph.DataType;
import dev.kiln.graph.ModelReader;
import dev.kiln.graph.ModelWriter;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import dev.kiln.testdata.Fixtures;
import dev.kiln.testdata.StoredTensor;
import dev.kiln.testdata.TestDataSet;
import java.nio.ByteOrder;
import java.nio.IntBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * ORT on Kiln's export against libtorch 2.7.1 (through DJL) on the TorchScript archive itself, for every committed
 * TorchScript fixture at its two stored shapes: the reference is the archive's own code run by torch's runtime,
 * not another exporter. Tolerance as in {@link FixtureParityTest}: 1e-5, or 4× torch.onnx.export's graph's own
 * error on the same inputs where that graph misses 1e-5 (sdxl_unet).
 */
class LibtorchParityTest {
  @TempDir static Path folder;

  static List<String> names() {
    return Fixtures.torchScriptComponentNames();
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("names")
  void exportMatchesLibtorch(String name) throws Exception {
    Path archive = Fixtures.torchScript(name);
    ExportResult result = TorchScriptExporter.export(archive, ComponentSpec.guess(name), 17);
    Path model = folder.resolve(name + ".onnx");
    ModelWriter.write(result.model(), model);
    List<String> inputNames = result.model().graph().inputs().stream().map(Value::name).toList();
    List<String> outputNames = result.model().graph().outputs().stream().map(Value::name).toList();
    Criteria<NDList, NDList> criteria = Criteria.builder().setTypes(NDList.class, NDList.class).optModelPath(archive).optEngine("PyTorch").build();
    try (ZooModel<NDList, NDList> torch = criteria.loadModel(); Predictor<NDList, NDList> predictor = torch.newPredictor()) {
      for (TestDataSet set : Fixtures.testDataSets(name)) {
        List<Tensor> inputs = new ArrayList<>();
        for (StoredTensor input : set.inputs()) {
          inputs.add(ModelReader.readTensor(input.path()));
        }
        Map<String, float[]> expected = new LinkedHashMap<>();
        try (NDManager manager = torch.getNDManager().newSubManager()) {
          NDList torchInputs = new NDList();
          for (Tensor input : inputs) {
            torchInputs.add(toTorch(manager, input));
          }
          NDList torchOutputs = predictor.predict(torchInputs);
          assertEquals(outputNames.size(), torchOutputs.size(), name + ": output count");
          for (int index = 0; index < outputNames.size(); index++) {
            NDArray output = torchOutputs.get(index);
            expected.put(outputNames.get(index), output.toFloatArray());
          }
        }
        double error = OrtRun.maxRelativeError(expected, OrtRun.run(model, inputNames, inputs));
        Path reference = Fixtures.component(name, dev.kiln.testdata.Opset.V17);
        double referenceError = OrtRun.maxRelativeError(expected, OrtRun.run(reference, inputNames, inputs));
        System.out.printf("libtorch %s %s: kiln %.3g, torch.onnx.export %.3g%n", name, set.name(), error, referenceError);
        assertTrue(error <= Math.max(1e-5, 4 * referenceError), name + " " + set.name() + ": " + error + " (torch.onnx.export " + referenceError + ")");
      }
    }
  }

  /** The traced archives take int64 ids; the stored ONNX inputs are Optimum's int32. */
  private static NDArray toTorch(NDManager manager, Tensor tensor) {
    Shape shape = new Shape(tensor.dims());
    var bytes = tensor.bytes().order(ByteOrder.LITTLE_ENDIAN);
    if (tensor.dataType() == DataType.FLOAT) {
      float[] values = new float[bytes.remaining() / 4];
      bytes.asFloatBuffer().get(values);
      return manager.create(values, shape);
    }
    long[] values;
    if (tensor.dataType() == DataType.INT32) {
      IntBuffer ints = bytes.asIntBuffer();
      values = new long[ints.remaining()];
      for (int index = 0; index < values.length; index++) {
        values[index] = ints.get(index);
      }
    } else {
      values = new long[bytes.remaining() / 8];
      bytes.asLongBuffer().get(values);
    }
    return manager.create(values, shape);
  }
}
