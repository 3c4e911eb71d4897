package dev.kiln.runner.pipeline;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** Half-precision conversions used for fp16 model inputs and outputs. */
class Float16Test {
  @Test
  void knownBitPatterns() {
    assertEquals((short) 0x3c00, Float16.fromFloat(1.0f));
    assertEquals((short) 0xc000, Float16.fromFloat(-2.0f));
    assertEquals((short) 0x7bff, Float16.fromFloat(65504f));
    assertEquals((short) 0x7c00, Float16.fromFloat(70000f));
    assertEquals((short) 0x0001, Float16.fromFloat(0x1p-24f));
    assertEquals((short) 0x3555, Float16.fromFloat(1.0f / 3));
    assertEquals(1.0f, Float16.toFloat((short) 0x3c00));
    assertEquals(65504f, Float16.toFloat((short) 0x7bff));
    assertEquals(0x1p-24f, Float16.toFloat((short) 0x0001));
    assertTrue(Float.isNaN(Float16.toFloat(Float16.fromFloat(Float.NaN))));
  }

  @Test
  void everyHalfRoundTripsAndRoundingIsToNearestEven() {
    for (int bits = 0; bits < 0x10000; bits++) {
      short half = (short) bits;
      float value = Float16.toFloat(half);
      if (!Float.isNaN(value)) {
        assertEquals(half, Float16.fromFloat(value), "half 0x" + Integer.toHexString(bits));
      }
    }
    // 1 + 2^-11 lies exactly between 1 and the next half (1 + 2^-10): ties go to the even mantissa, 1.
    assertEquals((short) 0x3c00, Float16.fromFloat(1.0f + 0x1p-11f));
    assertEquals((short) 0x3c02, Float16.fromFloat(1.0f + 3 * 0x1p-11f));
  }
}
