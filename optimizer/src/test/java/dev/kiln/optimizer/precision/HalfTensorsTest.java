package dev.kiln.optimizer.precision;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.common.HalfFloats;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The one-pass float32 → float16 conversion against {@link HalfOracle} (and the first implementation): every float16
 * value's neighbourhood (the value itself, the midpoints to its neighbours and a few float32 ulps around each, both
 * signs), the clamp limits, NaN payloads, and a million random bit patterns. The exhaustive check over all 2^32
 * patterns runs in {@code bench/fp16-exhaustive.sh}.
 */
class HalfTensorsTest {
  private static int checked;

  private static void check(int bits) {
    float value = Float.intBitsToFloat(bits);
    short expected = HalfOracle.toHalf(value);
    assertEquals(expected, HalfTensors.toHalf(bits), () -> String.format("0x%08x (%s)", bits, value));
    assertEquals(HalfOracle.clamps(value), HalfTensors.clamps(bits), () -> String.format("clamps 0x%08x (%s)", bits, value));
    checked++;
  }

  private static void around(double point) {
    int center = Float.floatToRawIntBits((float) point);
    for (int delta = -3; delta <= 3; delta++) {
      check(center + delta);
      check((center + delta) ^ 0x80000000);
    }
  }

  @Test
  void everyHalfValuesNeighbourhoodRoundsToNearestEven() {
    checked = 0;
    for (int half = 0; half <= 0x7bff; half++) {
      double value = HalfFloats.fromFloat16((short) half);
      double next = HalfFloats.fromFloat16((short) (half + 1)); // 0x7c00 is infinity: its "midpoint" is the overflow edge
      around(value);
      around((value + next) / 2);
    }
    assertEquals(0x7c00 * 2 * 7 * 2, checked);
  }

  @Test
  void clampLimitsAndSpecialValues() {
    // Beyond ±65504 (up to infinity) → ±65504; below 5.96e-8 → ±smallest subnormal; zero keeps its sign; NaN stays NaN.
    assertEquals((short) 0x7bff, HalfTensors.toHalf(Float.floatToRawIntBits(65519.99f)));
    assertEquals((short) 0x7bff, HalfTensors.toHalf(Float.floatToRawIntBits(Float.POSITIVE_INFINITY)));
    assertEquals((short) 0xfbff, HalfTensors.toHalf(Float.floatToRawIntBits(-1e30f)));
    assertEquals((short) 0x0001, HalfTensors.toHalf(Float.floatToRawIntBits(1e-30f)));
    assertEquals((short) 0x8001, HalfTensors.toHalf(Float.floatToRawIntBits(-Float.MIN_VALUE)));
    assertEquals((short) 0x8000, HalfTensors.toHalf(Float.floatToRawIntBits(-0f)));
    assertEquals((short) 0x0000, HalfTensors.toHalf(0));
    assertEquals((short) 0x7e00, HalfTensors.toHalf(0x7fc00000));
    assertEquals((short) 0xfe01, HalfTensors.toHalf(0xff802000));
    assertEquals(true, HalfTensors.clamps(Float.floatToRawIntBits(Float.NEGATIVE_INFINITY)));
    assertEquals(false, HalfTensors.clamps(0x7fc00000));
    assertEquals(false, HalfTensors.clamps(Float.floatToRawIntBits(65504f)));
    assertEquals(true, HalfTensors.clamps(Float.floatToRawIntBits(65504.01f)));
    assertEquals(false, HalfTensors.clamps(0x80000000));
    // 2^-25 is exactly half the smallest subnormal: round to even would give 0, the clamp keeps it non-zero.
    assertEquals((short) 0x0001, HalfTensors.toHalf(0x33000000));
    // Largest subnormal + half a step rounds to even: up into the smallest normal.
    assertEquals((short) 0x0400, HalfTensors.toHalf(Float.floatToRawIntBits((float) (1023.5 * 0x1p-24))));
    assertEquals((short) 0x03fe, HalfTensors.toHalf(Float.floatToRawIntBits((float) (1022.5 * 0x1p-24))));
  }

  @Test
  void randomBitPatternsMatchTheOracleAndTheFirstImplementationInBulk() {
    Random random = new Random(42);
    int count = 1 << 20;
    int[] bits = new int[count];
    for (int i = 0; i < count; i++) {
      // Half uniform bit patterns (every exponent), half weight-like values.
      bits[i] = i % 2 == 0 ? random.nextInt() : Float.floatToRawIntBits((float) (random.nextGaussian() * 0.02));
    }
    short[] halves = new short[count];
    long clamped = HalfTensors.convert(bits, halves, count);
    long expectedClamped = 0;
    for (int i = 0; i < count; i++) {
      float value = Float.intBitsToFloat(bits[i]);
      short expected = HalfOracle.toHalf(value);
      int index = i;
      assertEquals(expected, halves[i], () -> String.format("0x%08x", bits[index]));
      assertEquals(expected, HalfFloats.toFloat16(HalfTensors.clamp(value)), () -> String.format("first 0x%08x", bits[index]));
      expectedClamped += HalfOracle.clamps(value) ? 1 : 0;
    }
    assertEquals(expectedClamped, clamped);
    // About half of the uniform patterns lie beyond float16's range one way or the other.
    assertTrue(clamped > count / 5 && clamped < count / 2, "clamped " + clamped);
  }
}
