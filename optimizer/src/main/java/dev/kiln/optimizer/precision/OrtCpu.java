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
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Set;
import java.util.function.BiConsumer;

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
    Map<String, float[]> outputs = new LinkedHashMap<>();
    run(feeds, null, outputs::put);
    return outputs;
  }

  /** The float outputs named {@code requested}, by name. */
  Map<String, float[]> run(Map<String, CalibrationSets.Feed> feeds, Set<String> requested) {
    Map<String, float[]> outputs = new LinkedHashMap<>();
    run(feeds, requested, outputs::put);
    return outputs;
  }

  /**
   * Hands every float output to {@code each}, {@code chunk} outputs per run of the session: a graph with thousands of
   * exposed intermediates (the calibration graph of a full-size UNet) then never has more than {@code chunk} of them
   * alive at once, in ORT or on the heap, at the price of running the graph once per chunk. Outputs come in the
   * session's output order; each array is the consumer's to keep or drop.
   */
  void runEach(Map<String, CalibrationSets.Feed> feeds, int chunk, BiConsumer<String, float[]> each) {
    List<String> names = new ArrayList<>(outputNames());
    for (int start = 0; start < names.size(); start += chunk) {
      run(feeds, new LinkedHashSet<>(names.subList(start, Math.min(names.size(), start + chunk))), each);
    }
  }

  List<String> outputNames() {
    try {
      return new ArrayList<>(session.getOutputNames());
    } catch (Exception e) {
      throw new KilnException.ValidationFailed("ONNX Runtime lists no outputs: " + e.getMessage());
    }
  }

  private void run(Map<String, CalibrationSets.Feed> feeds, Set<String> requested, BiConsumer<String, float[]> each) {
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
      try (OrtSession.Result result = requested == null ? session.run(feed) : session.run(feed, requested)) {
        for (Map.Entry<String, OnnxValue> entry : result) {
          if (entry.getValue() instanceof OnnxTensor tensor && tensor.getInfo().type == ai.onnxruntime.OnnxJavaType.FLOAT) {
            TensorInfo info = tensor.getInfo();
            float[] values = new float[Math.toIntExact(info.getNumElements())];
            ByteBuffer bytes = tensor.getByteBuffer().order(ByteOrder.nativeOrder());
            bytes.asFloatBuffer().get(values);
            each.accept(entry.getKey(), values);
          }
        }
      }
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
