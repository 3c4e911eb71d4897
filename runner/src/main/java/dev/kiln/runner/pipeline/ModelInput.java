package dev.kiln.runner.pipeline;

/**
 * A value to feed a model input, held as float32, int64 or float64; {@link OnnxModel} converts it to the
 * element type the model declares (float, float16, double, int64, int32), so callers never need to know
 * whether this export wants its timestep as int64 or float.
 */
public record ModelInput(Object data, long[] shape) {
  public static ModelInput of(Tensor tensor) {
    return new ModelInput(tensor.data(), tensor.shape());
  }

  public static ModelInput longs(long[] values, long... shape) {
    return new ModelInput(values, shape);
  }

  public static ModelInput doubles(double[] values, long... shape) {
    return new ModelInput(values, shape);
  }

  int length() {
    if (data instanceof float[] floats) {
      return floats.length;
    }
    if (data instanceof long[] longs) {
      return longs.length;
    }
    return ((double[]) data).length;
  }

  double valueAt(int index) {
    if (data instanceof float[] floats) {
      return floats[index];
    }
    if (data instanceof long[] longs) {
      return longs[index];
    }
    return ((double[]) data)[index];
  }
}
