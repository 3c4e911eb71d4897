package dev.kiln.optimizer.precision;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.TensorInfo;
import dev.kiln.common.KilnException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.nio.LongBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One ORT CPU session over a model file, for calibration and verification: ORT's graph optimizations off (the graph
 * as written is measured, and ORT may not remove the emulation's Cast pairs), one thread (deterministic). int8
 * verification asks for ORT's optimizations (its QDQ fusions are what selects the int8 kernels).
 */
public final class OrtCpu implements AutoCloseable {
  private final OrtEnvironment environment = OrtEnvironment.getEnvironment();
  private final OrtSession session;

  public OrtCpu(Path model) {
    this(model, OrtSession.SessionOptions.OptLevel.NO_OPT, null);
  }

  /** A session at ORT optimization {@code level}; {@code optimizedModel}, when not null, receives ORT's optimized graph. */
  public OrtCpu(Path model, OrtSession.SessionOptions.OptLevel level, Path optimizedModel) {
    try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
      options.setOptimizationLevel(level);
      if (optimizedModel != null) {
        options.setOptimizedModelFilePath(optimizedModel.toString());
      }
      options.setIntraOpNumThreads(1);
      options.setInterOpNumThreads(1);
      options.setSessionLogLevel(ai.onnxruntime.OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL);
      session = environment.createSession(model.toString(), options);
    } catch (OrtException e) {
      throw new KilnException.Unsupported(model + ": ONNX Runtime cannot load it on CPU: " + e.getMessage(), e);
    }
  }

  /** Every float output by name (in the session's output order). */
  public Map<String, float[]> run(Map<String, CalibrationSets.Feed> feeds) {
    List<OnnxTensor> tensors = new ArrayList<>();
    try {
      Map<String, OnnxTensor> feed = new LinkedHashMap<>();
      for (String name : session.getInputNames()) {
        CalibrationSets.Feed input = feeds.get(name);
        if (input == null) {
          throw new KilnException.BadInput("calibration set lacks input " + name);
        }
        OnnxTensor tensor;
        if (input.values() instanceof float[] floats) {
          tensor = OnnxTensor.createTensor(environment, FloatBuffer.wrap(floats), input.shape());
        } else if (input.values() instanceof long[] longs) {
          tensor = OnnxTensor.createTensor(environment, LongBuffer.wrap(longs), input.shape());
        } else {
          tensor = OnnxTensor.createTensor(environment, IntBuffer.wrap((int[]) input.values()), input.shape());
        }
        tensors.add(tensor);
        feed.put(name, tensor);
      }
      Map<String, float[]> outputs = new LinkedHashMap<>();
      try (OrtSession.Result result = session.run(feed)) {
        for (Map.Entry<String, OnnxValue> entry : result) {
          if (entry.getValue() instanceof OnnxTensor tensor && tensor.getInfo().type == ai.onnxruntime.OnnxJavaType.FLOAT) {
            TensorInfo info = tensor.getInfo();
            float[] values = new float[Math.toIntExact(info.getNumElements())];
            ByteBuffer bytes = tensor.getByteBuffer().order(ByteOrder.nativeOrder());
            bytes.asFloatBuffer().get(values);
            outputs.put(entry.getKey(), values);
          }
        }
      }
      return outputs;
    } catch (OrtException e) {
      throw new KilnException.ValidationFailed("ONNX Runtime failed to run a precision check: " + e.getMessage());
    } finally {
      tensors.forEach(OnnxTensor::close);
    }
  }

  @Override
  public void close() {
    try {
      session.close();
    } catch (OrtException e) {
      // Closing only frees memory.
    }
  }
}
