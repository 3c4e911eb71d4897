package dev.kiln.optimizer.precision;

/**
 * An independent reference for the clamping float32 → float16 conversion, written from the definition instead of
 * bit tricks: the value is clamped, divided by the float16 step of its binade (exact in double, a power of two),
 * and rounded to the nearest integer, ties to even; then encoded. Slow and obviously right.
 */
final class HalfOracle {
  private HalfOracle() {}

  static short toHalf(float x) {
    int bits = Float.floatToRawIntBits(x);
    int sign = (bits >>> 16) & 0x8000;
    if (Float.isNaN(x)) {
      return (short) (sign | 0x7e00 | ((bits & 0x7fffff) >>> 13));
    }
    double magnitude = Math.abs((double) x);
    if (magnitude == 0) {
      return (short) sign;
    }
    if (magnitude > 65504) {
      return (short) (sign | 0x7bff);
    }
    if (magnitude < 5.96e-8f) {
      return (short) (sign | 1);
    }
    // Below 2^-14 float16 is subnormal: the step stays 2^-24.
    int exponent = Math.getExponent(magnitude);
    double step = Math.scalb(1.0, Math.max(exponent, -14) - 10);
    double quotient = magnitude / step;
    long steps = (long) Math.floor(quotient);
    double remainder = quotient - steps;
    if (remainder > 0.5 || remainder == 0.5 && (steps & 1) == 1) {
      steps++;
    }
    double value = steps * step;
    int encoded;
    if (value < 0x1p-14) {
      encoded = (int) steps;
    } else {
      int valueExponent = Math.getExponent(value);
      encoded = ((valueExponent + 15) << 10) | (int) (Math.scalb(value, -valueExponent) * 1024 - 1024);
    }
    return (short) (sign | encoded);
  }

  /** Clamped: finite or infinite beyond ±65504, or non-zero below 5.96e-8 in magnitude; never NaN or zero. */
  static boolean clamps(float x) {
    float magnitude = Math.abs(x);
    return magnitude > 65504f || magnitude > 0 && magnitude < 5.96e-8f;
  }
}
