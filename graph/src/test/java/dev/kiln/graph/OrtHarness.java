package dev.kiln.graph;

import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtLoggingLevel;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.TensorInfo;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Runs models in ONNX Runtime (CPU, one thread, one shared environment) on IR tensors, for tests. */
final class OrtHarness {
  static final OrtEnvironment ENVIRONMENT = OrtEnvironment.getEnvironment(OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL, "kiln-graph-tests");

  /** Error prefix for what ORT's Java API cannot express (not a verdict on the model or on ORT). */
  static final String JAVA_LIMIT = "java-api: ";

  private OrtHarness() {}

  /** What came back from ORT: outputs as raw tensors, or the error message. */
  record Outcome(List<Tensor> outputs, String error) {
    boolean failed() {
      return error != null;
    }
  }

  /** Why a model cannot be fed from Java at all (an input type the Java API cannot create), or null. */
  static String unfeedable(Tensor tensor) {
    return switch (tensor.dataType()) {
      case FLOAT, DOUBLE, INT8, UINT8, INT16, INT32, INT64, BOOL, FLOAT16, BFLOAT16, STRING -> null;
      default -> "ORT's Java API cannot create " + tensor.dataType() + " inputs";
    };
  }

  static Outcome run(Path model, Map<String, Tensor> inputs, List<String> outputNames) {
    try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
      options.setIntraOpNumThreads(1);
      options.setInterOpNumThreads(1);
      options.setExecutionMode(OrtSession.SessionOptions.ExecutionMode.SEQUENTIAL);
      options.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.NO_OPT);
      try (OrtSession session = ENVIRONMENT.createSession(model.toString(), options)) {
        Map<String, OnnxTensor> feeds = new LinkedHashMap<>();
        try {
          for (Map.Entry<String, Tensor> input : inputs.entrySet()) {
            feeds.put(input.getKey(), toOrt(input.getValue()));
          }
          try (OrtSession.Result result = session.run(feeds, new java.util.LinkedHashSet<>(outputNames))) {
            List<Tensor> outputs = new ArrayList<>();
            for (String name : outputNames) {
              OnnxValue value = result.get(name).orElseThrow();
              if (!(value instanceof OnnxTensor tensor)) {
                return new Outcome(null, "output " + name + " is not a tensor");
              }
              try {
                outputs.add(fromOrt(tensor));
              } catch (RuntimeException e) {
                return new Outcome(null, JAVA_LIMIT + "cannot read output " + name + " of " + tensor.getInfo() + ": " + e.getMessage());
              }
            }
            return new Outcome(outputs, null);
          }
        } finally {
          feeds.values().forEach(OnnxTensor::close);
        }
      }
    } catch (OrtException e) {
      return new Outcome(null, e.getMessage());
    }
  }

  static boolean unsupportedByOrt(String error) {
    return error.contains("NOT_IMPLEMENTED") || error.contains("Could not find an implementation") || error.contains("is not supported")
        || error.contains("not implemented") || error.contains("No Op registered") || error.contains("Unsupported")
        || error.contains("unsupported");
  }

  static OnnxTensor toOrt(Tensor tensor) throws OrtException {
    long[] shape = tensor.dims();
    if (tensor.dataType() == DataType.STRING) {
      String[] strings = tensor.strings().stream().map(com.google.protobuf.ByteString::toStringUtf8).toArray(String[]::new);
      return OnnxTensor.createTensor(ENVIRONMENT, strings, shape);
    }
    ByteBuffer data = ByteBuffer.allocateDirect((int) tensor.byteSize()).order(ByteOrder.nativeOrder());
    ByteBuffer source = tensor.bytes();
    if (ByteOrder.nativeOrder() != ByteOrder.LITTLE_ENDIAN) {
      throw new IllegalStateException("tests assume a little-endian machine");
    }
    data.put(source.duplicate());
    data.flip();
    return switch (tensor.dataType()) {
      case FLOAT -> OnnxTensor.createTensor(ENVIRONMENT, data.asFloatBuffer(), shape);
      case DOUBLE -> OnnxTensor.createTensor(ENVIRONMENT, data.asDoubleBuffer(), shape);
      case INT64 -> OnnxTensor.createTensor(ENVIRONMENT, data.asLongBuffer(), shape);
      case INT32 -> OnnxTensor.createTensor(ENVIRONMENT, data.asIntBuffer(), shape);
      case INT16 -> OnnxTensor.createTensor(ENVIRONMENT, data.asShortBuffer(), shape);
      case INT8 -> OnnxTensor.createTensor(ENVIRONMENT, data, shape, OnnxJavaType.INT8);
      case UINT8 -> OnnxTensor.createTensor(ENVIRONMENT, data, shape, OnnxJavaType.UINT8);
      case BOOL -> OnnxTensor.createTensor(ENVIRONMENT, data, shape, OnnxJavaType.BOOL);
      case FLOAT16 -> OnnxTensor.createTensor(ENVIRONMENT, data, shape, OnnxJavaType.FLOAT16);
      case BFLOAT16 -> OnnxTensor.createTensor(ENVIRONMENT, data, shape, OnnxJavaType.BFLOAT16);
      default -> throw new IllegalArgumentException(unfeedable(tensor));
    };
  }

  static Tensor fromOrt(OnnxTensor tensor) throws OrtException {
    TensorInfo info = tensor.getInfo();
    // By name: the enum's numeric field is not the ONNX wire number in every ORT version.
    DataType type = DataType.valueOf(info.onnxType.name().replace("ONNX_TENSOR_ELEMENT_DATA_TYPE_", ""));
    long[] shape = info.getShape();
    if (type == DataType.STRING) {
      List<String> strings = new ArrayList<>();
      flatten(tensor.getValue(), strings);
      return Tensor.ofStrings(shape, strings);
    }
    ByteBuffer raw = tensor.getByteBuffer();
    if (raw == null) {
      // The Java API has no buffer view for some element types (unsigned 16/32/64-bit); go through Java arrays.
      List<Object> elements = new ArrayList<>();
      flattenAny(tensor.getValue(), elements);
      ByteBuffer packed = ByteBuffer.allocate((int) type.byteSize(elements.size())).order(ByteOrder.LITTLE_ENDIAN);
      for (Object element : elements) {
        switch (type.elementSize()) {
          case 1 -> packed.put(element instanceof Boolean bool ? (byte) (bool ? 1 : 0) : ((Number) element).byteValue());
          case 2 -> packed.putShort(((Number) element).shortValue());
          case 4 -> packed.putInt(((Number) element).intValue());
          case 8 -> packed.putLong(((Number) element).longValue());
          default -> throw new OrtException("cannot read " + type + " outputs from Java");
        }
      }
      packed.flip();
      return Tensor.ofBytes(type, shape, packed);
    }
    return Tensor.ofBytes(type, shape, raw.order(ByteOrder.LITTLE_ENDIAN));
  }

  private static void flattenAny(Object value, List<Object> into) {
    if (value == null) {
      return;
    }
    if (value.getClass().isArray()) {
      int length = java.lang.reflect.Array.getLength(value);
      for (int i = 0; i < length; i++) {
        flattenAny(java.lang.reflect.Array.get(value, i), into);
      }
    } else {
      into.add(value);
    }
  }

  private static void flatten(Object value, List<String> into) {
    if (value instanceof String string) {
      into.add(string);
    } else if (value instanceof Object[] array) {
      for (Object element : array) {
        flatten(element, into);
      }
    }
  }
}
