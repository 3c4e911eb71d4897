package dev.kiln.exporter;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import dev.kiln.graph.DataType;
import dev.kiln.graph.Tensor;
import dev.kiln.validator.parity.Metrics;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.nio.LongBuffer;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Runs a model in ONNX Runtime on CPU (graph optimizations off: the graph as written) and returns float outputs. */
final class OrtRun {
  private OrtRun() {}

  static Map<String, float[]> run(Path model, List<String> inputNames, List<Tensor> inputs) throws Exception {
    OrtEnvironment environment = OrtEnvironment.getEnvironment();
    try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
      options.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.NO_OPT);
      options.setIntraOpNumThreads(1);
      try (OrtSession session = environment.createSession(model.toString(), options)) {
        Map<String, OnnxTensor> feeds = new LinkedHashMap<>();
        try {
          for (int index = 0; index < inputs.size(); index++) {
            feeds.put(inputNames.get(index), toOrt(environment, inputs.get(index), session, inputNames.get(index)));
          }
          Map<String, float[]> outputs = new LinkedHashMap<>();
          try (OrtSession.Result result = session.run(feeds)) {
            for (Map.Entry<String, OnnxValue> entry : result) {
              OnnxTensor tensor = (OnnxTensor) entry.getValue();
              FloatBuffer buffer = tensor.getFloatBuffer();
              float[] values = new float[buffer.remaining()];
              buffer.get(values);
              outputs.put(entry.getKey(), values);
            }
          }
          return outputs;
        } finally {
          for (OnnxTensor tensor : feeds.values()) {
            tensor.close();
          }
        }
      }
    }
  }

  private static OnnxTensor toOrt(OrtEnvironment environment, Tensor tensor, OrtSession session, String name) throws Exception {
    long[] dims = tensor.dims();
    var bytes = tensor.bytes().order(ByteOrder.LITTLE_ENDIAN);
    String expected = session.getInputInfo().get(name).getInfo().toString();
    if (tensor.dataType() == DataType.FLOAT) {
      return OnnxTensor.createTensor(environment, bytes.asFloatBuffer(), dims);
    }
    LongBuffer longs;
    if (tensor.dataType() == DataType.INT64) {
      longs = bytes.asLongBuffer();
    } else if (tensor.dataType() == DataType.INT32) {
      IntBuffer ints = bytes.asIntBuffer();
      long[] values = new long[ints.remaining()];
      for (int index = 0; index < values.length; index++) {
        values[index] = ints.get(index);
      }
      longs = LongBuffer.wrap(values);
    } else {
      throw new IllegalArgumentException("input type " + tensor.dataType());
    }
    if (expected.contains("INT32")) {
      int[] values = new int[longs.remaining()];
      for (int index = 0; index < values.length; index++) {
        values[index] = (int) longs.get(index);
      }
      return OnnxTensor.createTensor(environment, IntBuffer.wrap(values), dims);
    }
    return OnnxTensor.createTensor(environment, longs, dims);
  }

  static Map<String, float[]> floats(List<String> names, List<Tensor> tensors) {
    Map<String, float[]> result = new LinkedHashMap<>();
    for (int index = 0; index < names.size(); index++) {
      FloatBuffer buffer = tensors.get(index).bytes().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
      float[] values = new float[buffer.remaining()];
      buffer.get(values);
      result.put(names.get(index), values);
    }
    return result;
  }

  /** max|a-b| / max|b| over each output, the worst output. */
  static double maxRelativeError(Map<String, float[]> expected, Map<String, float[]> actual) {
    return Metrics.worstScaleRelativeError(expected, actual);
  }
}
