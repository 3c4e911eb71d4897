package dev.kiln.optimizer;

import ai.onnxruntime.NodeInfo;
import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.TensorInfo;
import dev.kiln.validator.parity.Metrics;
import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.nio.IntBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.Function;

/**
 * The one numeric referee shared by the optimizer's tests: run an original and a rewritten model in ONNX
 * Runtime on CPU with the same inputs and report the worst error over all outputs.
 *
 * <p>Error is measured relative to each output's scale: {@code max|a - b| / max(max|b|, 1e-6)}. An elementwise
 * ratio would explode on outputs near zero and say nothing about whether the graph computes the same thing.
 *
 * <p>Both sessions run with ORT's graph optimizations disabled, so the comparison is between the graphs as
 * written, not between what ORT's own fusions make of them.
 */
public final class OrtParity {
  private OrtParity() {}

  /** A dense input: element type, shape and values (float[], long[] or int[]). */
  public record Input(long[] shape, Object values) {
    public static Input floats(long[] shape, float[] values) {
      return new Input(shape, values);
    }

    public static Input longs(long[] shape, long[] values) {
      return new Input(shape, values);
    }
  }

  /** The worst error and where it was. */
  public record Result(double maxRelativeError, double maxAbsoluteError, String worstOutput, int outputCount) {
    @Override
    public String toString() {
      return String.format(java.util.Locale.ROOT, "max relative error %.3g (absolute %.3g) at output %s of %d",
          maxRelativeError, maxAbsoluteError, worstOutput, outputCount);
    }
  }

  /** Compares the two models on the given inputs; outputs are paired by name. */
  public static Result compare(Path original, Path rewritten, Map<String, Input> inputs) {
    Map<String, float[]> expected = run(original, inputs);
    Map<String, float[]> actual = run(rewritten, inputs);
    double worstRelative = 0;
    double worstAbsolute = 0;
    String worstName = "";
    for (var entry : expected.entrySet()) {
      float[] reference = entry.getValue();
      float[] candidate = actual.get(entry.getKey());
      if (candidate == null) {
        throw new AssertionError("rewritten model " + rewritten + " lacks output " + entry.getKey());
      }
      if (candidate.length != reference.length) {
        throw new AssertionError("output " + entry.getKey() + " has " + candidate.length + " elements, original "
            + reference.length);
      }
      double scale = 1e-6;
      double absolute = 0;
      for (int i = 0; i < reference.length; i++) {
        scale = Math.max(scale, Math.abs(reference[i]));
        double difference = Math.abs((double) reference[i] - candidate[i]);
        if (Double.isNaN(difference)) {
          difference = Double.POSITIVE_INFINITY;
        }
        absolute = Math.max(absolute, difference);
      }
      double relative = absolute / scale;
      if (relative >= worstRelative) {
        worstRelative = relative;
        worstAbsolute = absolute;
        worstName = entry.getKey();
      }
    }
    return new Result(worstRelative, worstAbsolute, worstName, expected.size());
  }

  /** The worst scale-relative error between two runs' outputs, paired by name. */
  public static double maxRelativeError(Map<String, float[]> expected, Map<String, float[]> actual) {
    return Metrics.worstScaleRelativeError(expected, actual);
  }

  /**
   * Random inputs for every graph input of {@code model}: symbolic dims take their value from
   * {@code dimensions} (by name; unnamed or unknown dims fail loudly), floats are standard normal, integers
   * uniform in [0, {@code integerBound}).
   */
  public static Map<String, Input> randomInputs(Path model, Map<String, Long> dimensions, long seed, long integerBound) {
    return randomInputs(model, name -> null, dimensions, seed, integerBound);
  }

  /** As {@link #randomInputs(Path, Map, long, long)}, with a per-input shape override (null = from the model). */
  public static Map<String, Input> randomInputs(Path model, Function<String, long[]> shapeOverride,
      Map<String, Long> dimensions, long seed, long integerBound) {
    Random random = new Random(seed);
    Map<String, Input> inputs = new LinkedHashMap<>();
    OrtEnvironment environment = OrtEnvironment.getEnvironment();
    try (OrtSession.SessionOptions options = sessionOptions();
        OrtSession session = environment.createSession(model.toString(), options)) {
      for (Map.Entry<String, NodeInfo> entry : session.getInputInfo().entrySet()) {
        TensorInfo info = (TensorInfo) entry.getValue().getInfo();
        long[] shape = shapeOverride.apply(entry.getKey());
        if (shape == null) {
          shape = info.getShape().clone();
          String[] names = info.getDimensionNames();
          for (int axis = 0; axis < shape.length; axis++) {
            if (shape[axis] < 0) {
              Long value = names == null ? null : dimensions.get(names[axis]);
              if (value == null) {
                throw new IllegalArgumentException("input " + entry.getKey() + " axis " + axis + " is symbolic ('"
                    + (names == null ? "" : names[axis]) + "') and no value was given");
              }
              shape[axis] = value;
            }
          }
        }
        int count = Math.toIntExact(elementCount(shape));
        if (info.type == OnnxJavaType.FLOAT) {
          float[] values = new float[count];
          for (int i = 0; i < count; i++) {
            values[i] = (float) random.nextGaussian();
          }
          inputs.put(entry.getKey(), new Input(shape, values));
        } else if (info.type == OnnxJavaType.INT64) {
          long[] values = new long[count];
          for (int i = 0; i < count; i++) {
            values[i] = (long) (random.nextDouble() * integerBound);
          }
          inputs.put(entry.getKey(), new Input(shape, values));
        } else if (info.type == OnnxJavaType.INT32) {
          int[] values = new int[count];
          for (int i = 0; i < count; i++) {
            values[i] = (int) (random.nextDouble() * integerBound);
          }
          inputs.put(entry.getKey(), new Input(shape, values));
        } else {
          throw new IllegalArgumentException("input " + entry.getKey() + " has type " + info.type
              + "; OrtParity feeds float, int64 and int32 only");
        }
      }
    } catch (OrtException e) {
      throw new IllegalStateException("ORT cannot load " + model + ": " + e.getMessage(), e);
    }
    return inputs;
  }

  /** Runs {@code model} on CPU and returns every float output flattened (other types are converted). */
  public static Map<String, float[]> run(Path model, Map<String, Input> inputs) {
    OrtEnvironment environment = OrtEnvironment.getEnvironment();
    List<OnnxTensor> tensors = new ArrayList<>();
    try (OrtSession.SessionOptions options = sessionOptions();
        OrtSession session = environment.createSession(model.toString(), options)) {
      Map<String, OnnxTensor> feed = new LinkedHashMap<>();
      for (String name : session.getInputNames()) {
        Input input = inputs.get(name);
        if (input == null) {
          throw new IllegalArgumentException(model + " needs input " + name);
        }
        OnnxTensor tensor = toTensor(environment, input);
        tensors.add(tensor);
        feed.put(name, tensor);
      }
      Map<String, float[]> outputs = new LinkedHashMap<>();
      try (OrtSession.Result result = session.run(feed)) {
        for (Map.Entry<String, OnnxValue> entry : result) {
          outputs.put(entry.getKey(), flatten((OnnxTensor) entry.getValue()));
        }
      }
      return outputs;
    } catch (OrtException e) {
      throw new AssertionError("ORT failed on " + model + ": " + e.getMessage(), e);
    } finally {
      tensors.forEach(OnnxTensor::close);
    }
  }

  static OrtSession.SessionOptions sessionOptions() throws OrtException {
    OrtSession.SessionOptions options = new OrtSession.SessionOptions();
    options.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.NO_OPT);
    // The machine is shared; one thread keeps tests from starving the other builds.
    options.setIntraOpNumThreads(1);
    options.setInterOpNumThreads(1);
    return options;
  }

  private static OnnxTensor toTensor(OrtEnvironment environment, Input input) throws OrtException {
    Object values = input.values();
    if (values instanceof float[] floats) {
      return OnnxTensor.createTensor(environment, FloatBuffer.wrap(floats), input.shape());
    }
    if (values instanceof long[] longs) {
      return OnnxTensor.createTensor(environment, LongBuffer.wrap(longs), input.shape());
    }
    if (values instanceof int[] ints) {
      return OnnxTensor.createTensor(environment, IntBuffer.wrap(ints), input.shape());
    }
    throw new IllegalArgumentException("unsupported input values " + values.getClass());
  }

  private static float[] flatten(OnnxTensor tensor) {
    float[] values = dev.kiln.validator.parity.OrtTensors.toFloats(tensor);
    if (values == null) {
      throw new IllegalArgumentException("unsupported output type " + tensor.getInfo().type);
    }
    return values;
  }

  static long elementCount(long[] shape) {
    long count = 1;
    for (long dimension : shape) {
      count *= dimension;
    }
    return count;
  }
}
