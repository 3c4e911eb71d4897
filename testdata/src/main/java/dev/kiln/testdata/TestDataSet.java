package dev.kiln.testdata;

import java.nio.file.Path;
import java.util.List;

/** A {@code test_data_set_N} folder: reference inputs and the outputs torch computed for them, in ONNX layout. */
public record TestDataSet(Path folder, List<StoredTensor> inputs, List<StoredTensor> outputs) {
  public TestDataSet {
    inputs = List.copyOf(inputs);
    outputs = List.copyOf(outputs);
  }

  public String name() {
    return folder.getFileName().toString();
  }
}
