package dev.kiln.validator.parity;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.kiln.common.KilnException;
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

  /** How a session is made from its options: from bytes or from a file. */
  private interface Opener {
    OrtSession open(OrtEnvironment environment, OrtSession.SessionOptions options) throws OrtException;
  }

  OrtRun(byte[] model, String label) {
    this(label, (environment, options) -> environment.createSession(model, options));
  }

  OrtRun(String path, String label) {
    this(label, (environment, options) -> environment.createSession(path, options));
  }

  private OrtRun(String label, Opener opener) {
    this.label = label;
    try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
      options.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.NO_OPT);
      options.setIntraOpNumThreads(1);
      options.setInterOpNumThreads(1);
      // Failures come back as exceptions and are reported as checks; ORT's own log would repeat them on stderr.
      options.setSessionLogLevel(ai.onnxruntime.OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL);
      session = opener.open(environment, options);
    } catch (OrtException e) {
      throw new KilnException.Unsupported(label + ": ONNX Runtime cannot load it on CPU: " + firstLine(e.getMessage()), e);
    }
  }

  /** Every output as float (integer and fp16 outputs converted), by name. */
  Map<String, float[]> run(Map<String, Input> inputs) {
    return run(inputs, null);
  }

  /** The float outputs named in {@code requested} (null: every output), by name. */
  Map<String, float[]> run(Map<String, Input> inputs, java.util.Set<String> requested) {
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
      try (OrtSession.Result result = requested == null ? session.run(feed) : session.run(feed, requested)) {
        for (Map.Entry<String, OnnxValue> entry : result) {
          if (entry.getValue() instanceof OnnxTensor tensor) {
            float[] values = OrtTensors.toFloats(tensor);
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
