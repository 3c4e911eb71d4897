package dev.kiln.common;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** Half-precision conversions as the runner uses them for fp16 model inputs and outputs. */
class HalfFloatsFloat16Test {
  @Test
  void knownBitPatterns() {
    assertEquals((short) 0x3c00, HalfFloats.toFloat16(1.0f));
    assertEquals((short) 0xc000, HalfFloats.toFloat16(-2.0f));
    assertEquals((short) 0x7bff, HalfFloats.toFloat16(65504f));
    assertEquals((short) 0x7c00, HalfFloats.toFloat16(70000f));
    assertEquals((short) 0x0001, HalfFloats.toFloat16(0x1p-24f));
    assertEquals((short) 0x3555, HalfFloats.toFloat16(1.0f / 3));
    assertEquals(1.0f, HalfFloats.fromFloat16((short) 0x3c00));
    assertEquals(65504f, HalfFloats.fromFloat16((short) 0x7bff));
    assertEquals(0x1p-24f, HalfFloats.fromFloat16((short) 0x0001));
    assertTrue(Float.isNaN(HalfFloats.fromFloat16(HalfFloats.toFloat16(Float.NaN))));
  }

  @Test
  void everyHalfRoundTripsAndRoundingIsToNearestEven() {
    for (int bits = 0; bits < 0x10000; bits++) {
      short half = (short) bits;
      float value = HalfFloats.fromFloat16(half);
      if (!Float.isNaN(value)) {
        assertEquals(half, HalfFloats.toFloat16(value), "half 0x" + Integer.toHexString(bits));
      }
    }
    // 1 + 2^-11 lies exactly between 1 and the next half (1 + 2^-10): ties go to the even mantissa, 1.
    assertEquals((short) 0x3c00, HalfFloats.toFloat16(1.0f + 0x1p-11f));
    assertEquals((short) 0x3c02, HalfFloats.toFloat16(1.0f + 3 * 0x1p-11f));
  }
}
