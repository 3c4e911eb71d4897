package dev.kiln.optimizer;

import dev.kiln.graph.DataType;
import dev.kiln.graph.Model;
import dev.kiln.graph.ModelReader;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/** Locating committed fixtures (testdata/fixtures/NAME/opsetN/model.onnx) and reading their stored inputs. */
final class FixtureModels {
  private FixtureModels() {}

  static Path root() {
    return Path.of(System.getProperty("kiln.root", "..")).resolve("testdata/fixtures");
  }

  static Path model(String name, int opset) {
    return root().resolve(name).resolve("opset" + opset).resolve("model.onnx");
  }

  /** The stored inputs of test_data_set_{index}, keyed by the model's input names in order. */
  static Map<String, OrtParity.Input> storedInputs(Path modelPath, int index) {
    Model model = ModelReader.read(modelPath);
    Path set = modelPath.getParent().resolve("test_data_set_" + index);
    Map<String, OrtParity.Input> inputs = new LinkedHashMap<>();
    List<Value> graphInputs = model.graph().inputs().stream().filter(value -> !value.isInitializer()).toList();
    for (int i = 0; i < graphInputs.size(); i++) {
      Tensor tensor = ModelReader.readTensor(set.resolve("input_" + i + ".pb"));
      inputs.put(graphInputs.get(i).name(), toInput(tensor));
    }
    return inputs;
  }

  static OrtParity.Input toInput(Tensor tensor) {
    if (tensor.dataType() == DataType.FLOAT) {
      return new OrtParity.Input(tensor.dims(), tensor.floats());
    }
    if (tensor.dataType() == DataType.INT64) {
      return new OrtParity.Input(tensor.dims(), tensor.longs());
    }
    if (tensor.dataType() == DataType.INT32) {
      return new OrtParity.Input(tensor.dims(), tensor.ints());
    }
    throw new IllegalArgumentException("stored input of type " + tensor.dataType());
  }

  static List<String> names() {
    try (Stream<Path> folders = Files.list(root())) {
      return folders.filter(folder -> Files.isRegularFile(folder.resolve("opset17/model.onnx")))
          .map(folder -> folder.getFileName().toString()).sorted().toList();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
