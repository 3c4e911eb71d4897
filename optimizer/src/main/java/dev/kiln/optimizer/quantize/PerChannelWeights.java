package dev.kiln.optimizer.quantize;

import dev.kiln.graph.DataType;
import dev.kiln.graph.Tensor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Symmetric per-channel int8 weights: channel c along {@code axis} gets {@code scale[c] = max|w_c| / 127} and zero
 * point 0, values rounded half to even (as ONNX's QuantizeLinear rounds) and clamped to [−127, 127] (the symmetric range: −128 would make the
 * grid lopsided). The scales are computed now; the int8 bytes are computed again whenever the writer asks, so a
 * large external weight is never held twice on the heap.
 */
final class PerChannelWeights {
  static final int LIMIT = 127;

  private PerChannelWeights() {}

  record Quantized(Tensor values, float[] scales) {}

  static Quantized quantize(Tensor weight, int axis) {
    long[] dims = weight.dims();
    float[] scales = scales(weight.floats(), dims, axis);
    Tensor values = Tensor.computed(DataType.INT8, dims, () -> bytes(weight.floats(), dims, axis, scales));
    return new Quantized(values, scales);
  }

  static float[] scales(float[] values, long[] dims, int axis) {
    int channels = Math.toIntExact(dims[axis]);
    long inner = inner(dims, axis);
    float[] peaks = new float[channels];
    for (int index = 0; index < values.length; index++) {
      int channel = (int) ((index / inner) % channels);
      peaks[channel] = Math.max(peaks[channel], Math.abs(values[index]));
    }
    float[] scales = new float[channels];
    for (int channel = 0; channel < channels; channel++) {
      // An all-zero channel quantizes to zeros under any scale; 1 keeps the scale positive as ONNX requires.
      scales[channel] = peaks[channel] > 0 ? peaks[channel] / LIMIT : 1f;
    }
    return scales;
  }

  static ByteBuffer bytes(float[] values, long[] dims, int axis, float[] scales) {
    int channels = scales.length;
    long inner = inner(dims, axis);
    ByteBuffer data = ByteBuffer.allocate(values.length).order(ByteOrder.LITTLE_ENDIAN);
    for (int index = 0; index < values.length; index++) {
      int channel = (int) ((index / inner) % channels);
      data.put((byte) quantize(values[index], scales[channel]));
    }
    data.flip();
    return data.asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
  }

  static int quantize(float value, float scale) {
    double rounded = Math.rint((double) value / scale);
    return (int) Math.max(-LIMIT, Math.min(LIMIT, rounded));
  }

  private static long inner(long[] dims, int axis) {
    long inner = 1;
    for (int i = axis + 1; i < dims.length; i++) {
      inner *= dims[i];
    }
    return inner;
  }
}
