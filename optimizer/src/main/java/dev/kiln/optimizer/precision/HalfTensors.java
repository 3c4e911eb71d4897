package dev.kiln.optimizer.precision;

import dev.kiln.common.HalfFloats;
import dev.kiln.graph.DataType;
import dev.kiln.graph.Tensor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;

/**
 * float32 → float16 tensor conversion with sign-preserving clamping into ±[{@value #SMALLEST}, {@value #LARGEST}]:
 * a weight beyond float16's range becomes the largest finite half instead of Inf, and a tiny non-zero weight the
 * smallest subnormal instead of zero (a zero scale or epsilon can turn a normalisation into a division by zero).
 * NaN stays NaN.
 */
final class HalfTensors {
  private HalfTensors() {}

  static final float LARGEST = 65504f;
  static final float SMALLEST = 5.96e-8f;

  /** How many values of a float32 tensor the conversion clamps; reads the tensor once, holds nothing. */
  static long clampedCount(Tensor source) {
    FloatBuffer values = source.readBytes().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
    long count = 0;
    while (values.hasRemaining()) {
      float value = values.get();
      if (clamp(value) != value) {
        count++;
      }
    }
    return count;
  }

  static float clamp(float value) {
    float magnitude = Math.abs(value);
    if (magnitude > LARGEST) {
      return Math.copySign(LARGEST, value);
    }
    if (magnitude > 0 && magnitude < SMALLEST) {
      return Math.copySign(SMALLEST, value);
    }
    return value;
  }

  /**
   * The float16 copy of {@code source}, computed each time the writer asks for its bytes and dropped afterwards,
   * so an external weight file is converted while it streams and never held on the heap as a whole.
   */
  static Tensor lazyHalf(Tensor source) {
    return Tensor.computed(DataType.FLOAT16, source.dims(), () -> {
      FloatBuffer values = source.readBytes().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
      ByteBuffer half = ByteBuffer.allocate(values.remaining() * 2).order(ByteOrder.LITTLE_ENDIAN);
      while (values.hasRemaining()) {
        half.putShort(HalfFloats.toFloat16(clamp(values.get())));
      }
      half.flip();
      return half.asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
    });
  }

  /** A small tensor (Constant attribute) converted now. */
  static Tensor half(Tensor source) {
    float[] values = source.floats();
    for (int i = 0; i < values.length; i++) {
      values[i] = clamp(values[i]);
    }
    return Tensor.ofFloat16(source.dims(), values);
  }
}
