package dev.kiln.optimizer.precision;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.TensorInfo;
import dev.kiln.common.KilnException;
import dev.kiln.graph.Model;
import dev.kiln.graph.SharedTensors;
import dev.kiln.graph.Tensor;
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
  /** Weights handed to ORT by reference (an in-memory session); closed after the session. */
  private final List<OnnxTensor> weights = new ArrayList<>();

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

  /**
   * A session over {@code model} in memory, at ORT's optimizations off and one thread as above: the graph goes to ORT
   * as bytes without its large initializers, which ORT then takes from {@code shared}'s direct buffers by reference
   * ({@code SessionOptions.addInitializer}; nothing is written to disk and no weight is copied, on the heap or in ORT).
   */
  OrtCpu(Model model, SessionWeights shared) {
    this(SharedTensors.graphOnly(model, SharedTensors.DEFAULT_THRESHOLD), shared);
  }

  private OrtCpu(SharedTensors.GraphOnly graph, SessionWeights shared) {
    this(graph.proto(), graph.external(), shared);
  }

  /** A session over graph-only {@code proto} whose initializers named in {@code external} ORT reads by reference. */
  OrtCpu(byte[] proto, Map<String, Tensor> external, SessionWeights shared) {
    try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
      options.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.NO_OPT);
      // No arena: its power-of-two extensions keep what one large run took; freed tensors go back to the system.
      options.setCPUArenaAllocator(false);
      options.setIntraOpNumThreads(1);
      options.setInterOpNumThreads(1);
      options.setSessionLogLevel(ai.onnxruntime.OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL);
      Map<String, ai.onnxruntime.OnnxTensorLike> initializers = new LinkedHashMap<>();
      for (Map.Entry<String, Tensor> entry : external.entrySet()) {
        Tensor tensor = entry.getValue();
        OnnxTensor value = OnnxTensor.createTensor(environment, shared.direct(tensor), tensor.dims(), javaType(tensor));
        weights.add(value);
        initializers.put(entry.getKey(), value);
      }
      // addInitializer, not addExternalInitializers: ORT 1.22 copies what the latter hands it (measured on the
      // full-size UNet: +3.4 GB and 10 s a session), the former it reads in place (no copy, 1.6 s).
      for (Map.Entry<String, ai.onnxruntime.OnnxTensorLike> entry : initializers.entrySet()) {
        options.addInitializer(entry.getKey(), entry.getValue());
      }
      session = environment.createSession(proto, options);
    } catch (OrtException e) {
      weights.forEach(OnnxTensor::close);
      throw new KilnException.Unsupported("ONNX Runtime cannot load a precision check graph on CPU: " + e.getMessage(), e);
    }
  }

  private static ai.onnxruntime.OnnxJavaType javaType(Tensor tensor) {
    return switch (tensor.dataType()) {
      case FLOAT -> ai.onnxruntime.OnnxJavaType.FLOAT;
      case FLOAT16 -> ai.onnxruntime.OnnxJavaType.FLOAT16;
      case BFLOAT16 -> ai.onnxruntime.OnnxJavaType.BFLOAT16;
      case DOUBLE -> ai.onnxruntime.OnnxJavaType.DOUBLE;
      case INT8 -> ai.onnxruntime.OnnxJavaType.INT8;
      case UINT8 -> ai.onnxruntime.OnnxJavaType.UINT8;
      case INT16 -> ai.onnxruntime.OnnxJavaType.INT16;
      case INT32 -> ai.onnxruntime.OnnxJavaType.INT32;
      case INT64 -> ai.onnxruntime.OnnxJavaType.INT64;
      case BOOL -> ai.onnxruntime.OnnxJavaType.BOOL;
      default -> throw new KilnException.Unsupported("a " + tensor.dataType() + " weight cannot be handed to ONNX Runtime by reference");
    };
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

  /**
   * Small float or int64 outputs named {@code requested}, as doubles (exact for int64 up to 2^53): the in-graph
   * statistics of a run.
   */
  Map<String, double[]> runNumbers(Map<String, CalibrationSets.Feed> feeds, Set<String> requested) {
    Map<String, double[]> numbers = new LinkedHashMap<>();
    List<OnnxTensor> tensors = new ArrayList<>();
    try (OrtSession.Result result = session.run(feedTensors(feeds, tensors), requested)) {
      for (Map.Entry<String, OnnxValue> entry : result) {
        if (entry.getValue() instanceof OnnxTensor tensor) {
          ByteBuffer bytes = tensor.getByteBuffer().order(ByteOrder.nativeOrder());
          double[] values = new double[Math.toIntExact(tensor.getInfo().getNumElements())];
          for (int i = 0; i < values.length; i++) {
            values[i] = switch (tensor.getInfo().type) {
              case FLOAT -> bytes.getFloat(i * Float.BYTES);
              case INT64 -> bytes.getLong(i * Long.BYTES);
              default -> throw new KilnException.ValidationFailed("statistic " + entry.getKey() + " is not a number");
            };
          }
          numbers.put(entry.getKey(), values);
        }
      }
    } catch (OrtException e) {
      throw new KilnException.ValidationFailed("ONNX Runtime failed to run a precision check: " + e.getMessage());
    } finally {
      tensors.forEach(OnnxTensor::close);
    }
    return numbers;
  }

  List<String> outputNames() {
    try {
      return new ArrayList<>(session.getOutputNames());
    } catch (Exception e) {
      throw new KilnException.ValidationFailed("ONNX Runtime lists no outputs: " + e.getMessage());
    }
  }

  /** The feeds as ORT tensors, in the session's input order; each is added to {@code created} for the caller to close. */
  private Map<String, OnnxTensor> feedTensors(Map<String, CalibrationSets.Feed> feeds, List<OnnxTensor> created)
      throws OrtException {
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
      created.add(tensor);
      feed.put(name, tensor);
    }
    return feed;
  }

  private void run(Map<String, CalibrationSets.Feed> feeds, Set<String> requested, BiConsumer<String, float[]> each) {
    List<OnnxTensor> tensors = new ArrayList<>();
    try {
      Map<String, OnnxTensor> feed = feedTensors(feeds, tensors);
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
    weights.forEach(OnnxTensor::close);
  }
}
