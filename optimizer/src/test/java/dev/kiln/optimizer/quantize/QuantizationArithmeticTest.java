package dev.kiln.optimizer.quantize;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kiln.graph.DataType;
import dev.kiln.graph.Tensor;
import java.nio.ByteBuffer;
import org.junit.jupiter.api.Test;

/** Exact numbers of the weight, activation and range arithmetic. */
class QuantizationArithmeticTest {

  @Test
  void convWeightsAreSymmetricPerOutputChannel() {
    // W[2 out, 1 in, 1, 2]: channel 0 peaks at 1.27 (scale 0.01), channel 1 is all zero (scale 1, values 0).
    Tensor weight = Tensor.ofFloats(new long[] {2, 1, 1, 2}, 0.5f, -1.27f, 0f, 0f);
    PerChannelWeights.Quantized quantized = PerChannelWeights.quantize(weight, 0);
    assertArrayEquals(new float[] {1.27f / 127, 1f}, quantized.scales());
    assertEquals(DataType.INT8, quantized.values().dataType());
    assertArrayEquals(new long[] {50, -127, 0, 0}, quantized.values().longs());
  }

  @Test
  void matMulWeightsArePerOutputColumnRoundedHalfToEven() {
    // W[K=2, N=2]: column 0 peaks at 1 (scale 1/127), column 1 at 4 (scale 4/127). −2 / (4/127) = −63.5 → −64 and
    // 0.5 / (1/127) = 63.5 → 64 (half to even, as QuantizeLinear rounds).
    Tensor weight = Tensor.ofFloats(new long[] {2, 2}, 1f, -2f, 0.5f, 4f);
    PerChannelWeights.Quantized quantized = PerChannelWeights.quantize(weight, 1);
    assertArrayEquals(new float[] {1f / 127, 4f / 127}, quantized.scales());
    assertArrayEquals(new long[] {127, -64, 64, 127}, quantized.values().longs());
  }

  @Test
  void quantizedWeightBytesAreTheSameEveryTimeTheWriterAsks() {
    Tensor weight = Tensor.ofFloats(new long[] {3, 2}, 0.3f, -0.7f, 0.11f, 0.9f, -0.25f, 0.05f);
    Tensor values = PerChannelWeights.quantize(weight, 0).values();
    ByteBuffer first = values.bytes();
    ByteBuffer second = values.bytes();
    assertEquals(first, second);
  }

  @Test
  void activationRangesAlwaysHoldZero() {
    QuantizationParameters unsigned = QuantizationParameters.forRange(-1, 3, false);
    assertEquals(4f / 255, unsigned.scale());
    assertEquals(64, unsigned.zeroPoint()); // round(1 / (4/255)) = round(63.75)
    assertEquals(DataType.UINT8, unsigned.type());
    QuantizationParameters signed = QuantizationParameters.forRange(-1, 3, true);
    assertEquals(-64, signed.zeroPoint());
    assertEquals(DataType.INT8, signed.type());
    // A positive-only range still starts at zero: zero point 0, no code wasted below it... and 0 stays exact.
    QuantizationParameters positive = QuantizationParameters.forRange(2, 5.1, false);
    assertEquals(0, positive.zeroPoint());
    assertEquals((float) (5.1 / 255), positive.scale());
    QuantizationParameters empty = QuantizationParameters.forRange(0, 0, false);
    assertEquals(1f, empty.scale());
    assertEquals(0, empty.zeroPoint());
  }

  @Test
  void histogramDoesNotDependOnTheOrderValuesArrive() {
    float[] small = new float[1000];
    for (int i = 0; i < small.length; i++) {
      small[i] = (i - 500) / 1000f;
    }
    float[] large = {-40f, 3f, 7f, 100f};
    ValueHistogram forward = new ValueHistogram();
    forward.add(small);
    forward.add(large);
    ValueHistogram backward = new ValueHistogram();
    backward.add(large);
    backward.add(small);
    assertArrayEquals(forward.percentileRange(0.999), backward.percentileRange(0.999));
    assertEquals(-40, forward.min());
    assertEquals(100, forward.max());
  }

  @Test
  void percentileRangeSaturatesOutliersMinMaxKeepsThem() {
    float[] values = new float[100_000];
    for (int i = 0; i < values.length; i++) {
      values[i] = (i % 2000) / 1000f - 1; // uniform in [−1, 1)
    }
    values[0] = 50f; // one outlier
    ValueHistogram histogram = new ValueHistogram();
    histogram.add(values);
    double[] range = histogram.percentileRange(0.9999);
    assertEquals(50, histogram.max());
    // The 10 largest values lie within one bin (width 128/4096) of 1: the range ends there, not at the outlier.
    assertEquals(-1, range[0], 2 * 128.0 / 4096);
    assertEquals(1, range[1], 2 * 128.0 / 4096);
  }
}
