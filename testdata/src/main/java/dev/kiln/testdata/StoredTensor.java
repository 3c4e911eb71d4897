package dev.kiln.testdata;

import java.nio.file.Path;
import java.util.List;

/**
 * One {@code input_K.pb} / {@code output_K.pb} of a test data set (a serialized ONNX TensorProto) as the manifest
 * describes it. {@code maxAbs} is the largest |value| the generator saw (outputs only; NaN for inputs), which tests
 * use as the output's scale for relative tolerances.
 */
public record StoredTensor(String name, Path path, List<Long> shape, String dtype, double maxAbs) {
  public StoredTensor {
    shape = List.copyOf(shape);
  }

  public long[] dims() {
    return shape.stream().mapToLong(Long::longValue).toArray();
  }
}
