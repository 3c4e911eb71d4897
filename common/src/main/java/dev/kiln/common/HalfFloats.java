package dev.kiln.common;

/**
 * IEEE half precision (FLOAT16) and bfloat16 conversions, round to nearest even. Shared by the graph IR
 * (initializer data) and the runner (fp16 model inputs and outputs; Java 17 has no Float.floatToFloat16).
 */
public final class HalfFloats {
  private HalfFloats() {}

  /** The float a FLOAT16 bit pattern stands for. */
  public static float fromFloat16(short bits) {
    int half = bits & 0xffff;
    int sign = (half & 0x8000) << 16;
    int exponent = (half >>> 10) & 0x1f;
    int mantissa = half & 0x3ff;
    if (exponent == 0x1f) {
      return Float.intBitsToFloat(sign | 0x7f800000 | (mantissa << 13));
    }
    if (exponent == 0) {
      if (mantissa == 0) {
        return Float.intBitsToFloat(sign);
      }
      // Subnormal half: value is mantissa * 2^-24, exact in float.
      float magnitude = mantissa * 0x1p-24f;
      return sign == 0 ? magnitude : -magnitude;
    }
    return Float.intBitsToFloat(sign | ((exponent + 112) << 23) | (mantissa << 13));
  }

  /** The nearest FLOAT16 bit pattern (ties to even); overflow gives infinity, NaN stays NaN. */
  public static short toFloat16(float value) {
    int bits = Float.floatToRawIntBits(value);
    int sign = (bits >>> 16) & 0x8000;
    int exponent = (bits >>> 23) & 0xff;
    int mantissa = bits & 0x7fffff;
    if (exponent == 0xff) {
      return (short) (sign | 0x7c00 | (mantissa != 0 ? 0x200 | (mantissa >>> 13) : 0));
    }
    int halfExponent = exponent - 127 + 15;
    if (halfExponent >= 0x1f) {
      return (short) (sign | 0x7c00);
    }
    if (halfExponent <= 0) {
      if (halfExponent < -10) {
        return (short) sign;
      }
      // Subnormal result: shift the full mantissa (with its implicit one) and round to nearest even.
      int full = mantissa | 0x800000;
      int shift = 14 - halfExponent;
      int half = full >>> shift;
      int remainder = full & ((1 << shift) - 1);
      int halfway = 1 << (shift - 1);
      if (remainder > halfway || (remainder == halfway && (half & 1) == 1)) {
        half++;
      }
      return (short) (sign | half);
    }
    int half = (halfExponent << 10) | (mantissa >>> 13);
    int remainder = mantissa & 0x1fff;
    if (remainder > 0x1000 || (remainder == 0x1000 && (half & 1) == 1)) {
      half++; // may carry into the exponent, which correctly rounds up to the next binade or infinity
    }
    return (short) (sign | half);
  }

  /** The float a BFLOAT16 bit pattern stands for (the top half of a float). */
  public static float fromBFloat16(short bits) {
    return Float.intBitsToFloat((bits & 0xffff) << 16);
  }

  /** The nearest BFLOAT16 bit pattern (ties to even); NaN stays a quiet NaN. */
  public static short toBFloat16(float value) {
    int bits = Float.floatToRawIntBits(value);
    if (Float.isNaN(value)) {
      return (short) ((bits >>> 16) | 0x40);
    }
    int rounding = 0x7fff + ((bits >>> 16) & 1);
    return (short) ((bits + rounding) >>> 16);
  }

  public static float[] fromFloat16(short[] bits) {
    float[] values = new float[bits.length];
    for (int i = 0; i < bits.length; i++) {
      values[i] = fromFloat16(bits[i]);
    }
    return values;
  }

  public static short[] toFloat16(float[] values) {
    short[] bits = new short[values.length];
    for (int i = 0; i < values.length; i++) {
      bits[i] = toFloat16(values[i]);
    }
    return bits;
  }

  public static float[] fromBFloat16(short[] bits) {
    float[] values = new float[bits.length];
    for (int i = 0; i < bits.length; i++) {
      values[i] = fromBFloat16(bits[i]);
    }
    return values;
  }

  public static short[] toBFloat16(float[] values) {
    short[] bits = new short[values.length];
    for (int i = 0; i < values.length; i++) {
      bits[i] = toBFloat16(values[i]);
    }
    return bits;
  }
}
