package dev.kiln.validator.parity;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.TensorInfo;
import dev.kiln.common.HalfFloats;
import dev.kiln.common.KilnException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.nio.LongBuffer;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One ORT CPU session over a serialized model: graph optimizations off (the graph as written is judged, not
 * what ORT's own fusions make of it), one thread (deterministic, and the machine is shared).
 */
final class OrtRun implements AutoCloseable {
  private final OrtEnvironment environment = OrtEnvironment.getEnvironment();
  private final OrtSession session;
  private final String label;

  OrtRun(byte[] model, String label) {
    this.label = label;
    try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
      options.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.NO_OPT);
      options.setIntraOpNumThreads(1);
      options.setInterOpNumThreads(1);
      // Failures come back as exceptions and are reported as checks; ORT's own log would repeat them on stderr.
      options.setSessionLogLevel(ai.onnxruntime.OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL);
      session = environment.createSession(model, options);
    } catch (OrtException e) {
      throw new KilnException.Unsupported(label + ": ONNX Runtime cannot load it on CPU: " + firstLine(e.getMessage()), e);
    }
  }

  OrtRun(String path, String label) {
    this.label = label;
    try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
      options.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.NO_OPT);
      options.setIntraOpNumThreads(1);
      options.setInterOpNumThreads(1);
      options.setSessionLogLevel(ai.onnxruntime.OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL);
      session = environment.createSession(path, options);
    } catch (OrtException e) {
      throw new KilnException.Unsupported(label + ": ONNX Runtime cannot load it on CPU: " + firstLine(e.getMessage()), e);
    }
  }

  /** Every output as float (integer and fp16 outputs converted), by name. */
  Map<String, float[]> run(Map<String, Input> inputs) {
    List<OnnxTensor> tensors = new ArrayList<>();
    try {
      Map<String, OnnxTensor> feed = new LinkedHashMap<>();
      for (String name : session.getInputNames()) {
        Input input = inputs.get(name);
        if (input == null) {
          throw new KilnException.BadInput(label + " needs input " + name + ", which the reference does not have");
        }
        OnnxTensor tensor = toTensor(input);
        tensors.add(tensor);
        feed.put(name, tensor);
      }
      Map<String, float[]> outputs = new LinkedHashMap<>();
      try (OrtSession.Result result = session.run(feed)) {
        for (Map.Entry<String, OnnxValue> entry : result) {
          if (entry.getValue() instanceof OnnxTensor tensor) {
            float[] values = flatten(tensor);
            if (values != null) {
              outputs.put(entry.getKey(), values);
            }
          }
        }
      }
      return outputs;
    } catch (OrtException e) {
      throw new KilnException.ValidationFailed(label + ": ONNX Runtime failed to run it: " + firstLine(e.getMessage()));
    } finally {
      tensors.forEach(OnnxTensor::close);
    }
  }

  private OnnxTensor toTensor(Input input) throws OrtException {
    Object values = input.values();
    if (values instanceof float[] floats) {
      return OnnxTensor.createTensor(environment, FloatBuffer.wrap(floats), input.shape());
    }
    if (values instanceof long[] longs) {
      return OnnxTensor.createTensor(environment, LongBuffer.wrap(longs), input.shape());
    }
    return OnnxTensor.createTensor(environment, IntBuffer.wrap((int[]) values), input.shape());
  }

  private static float[] flatten(OnnxTensor tensor) {
    TensorInfo info = tensor.getInfo();
    int count = Math.toIntExact(info.getNumElements());
    float[] out = new float[count];
    ByteBuffer bytes = tensor.getByteBuffer().order(ByteOrder.nativeOrder());
    switch (info.type) {
      case FLOAT -> bytes.asFloatBuffer().get(out);
      case DOUBLE -> {
        for (int i = 0; i < count; i++) {
          out[i] = (float) bytes.asDoubleBuffer().get(i);
        }
      }
      case INT64 -> {
        LongBuffer longs = bytes.asLongBuffer();
        for (int i = 0; i < count; i++) {
          out[i] = longs.get(i);
        }
      }
      case INT32 -> {
        IntBuffer ints = bytes.asIntBuffer();
        for (int i = 0; i < count; i++) {
          out[i] = ints.get(i);
        }
      }
      case FLOAT16 -> {
        var shorts = bytes.asShortBuffer();
        for (int i = 0; i < count; i++) {
          out[i] = HalfFloats.fromFloat16(shorts.get(i));
        }
      }
      default -> {
        return null;
      }
    }
    return out;
  }

  static String firstLine(String message) {
    if (message == null) {
      return "(no message)";
    }
    int newline = message.indexOf('\n');
    return newline < 0 ? message : message.substring(0, newline);
  }

  @Override
  public void close() {
    try {
      session.close();
    } catch (OrtException e) {
      // Closing a session only frees memory; nothing to report.
    }
  }
}
