package dev.kiln.optimizer.lowering;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kiln.optimizer.lowering.ReferenceOps.Tensor;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The references are the yardstick for every lowering, so they get their own checks against known values. */
class ReferenceOpsTest {

  @Test
  void erfMatchesTabulatedValues() {
    // Abramowitz & Stegun table 7.1 and high-precision values.
    assertEquals(0.0, ReferenceOps.erf(0), 0);
    assertEquals(0.5204998778130465, ReferenceOps.erf(0.5), 1e-14);
    assertEquals(0.8427007929497149, ReferenceOps.erf(1), 1e-14);
    assertEquals(-0.9953222650189527, ReferenceOps.erf(-2), 1e-13);
    assertEquals(0.9995930479825550, ReferenceOps.erf(2.5), 1e-13);
    assertEquals(0.9999999845827421, ReferenceOps.erf(4), 1e-14);
    assertEquals(0.9953222650189527, ReferenceOps.erf(1.9999999), 1e-6);
  }

  @Test
  void groupNormOfOneGroupPerChannelIsInstanceNorm() {
    Tensor x = new Tensor(new float[] {1, 2, 3, 4, 10, 10, 10, 14}, new long[] {1, 2, 2, 2});
    Tensor y = ReferenceOps.groupNorm(x, new float[] {1, 2}, new float[] {0, 1}, 2, 0f, false, false);
    double first = (1 - 2.5) / Math.sqrt(1.25);
    assertEquals(first, y.data()[0], 1e-6);
    // second channel: mean 11, variance 3, gamma 2, beta 1
    assertEquals(2 * (14 - 11) / Math.sqrt(3) + 1, y.data()[7], 1e-6);
  }

  @Test
  void channelsLastAndChannelsFirstAgreeOnTransposedInput() {
    Random random = new Random(3);
    int n = 2, c = 6, h = 3, w = 5;
    float[] first = new float[n * c * h * w];
    float[] last = new float[first.length];
    for (int i = 0; i < first.length; i++) {
      first[i] = (float) random.nextGaussian();
    }
    for (int b = 0; b < n; b++) {
      for (int ch = 0; ch < c; ch++) {
        for (int p = 0; p < h * w; p++) {
          last[(b * h * w + p) * c + ch] = first[(b * c + ch) * h * w + p];
        }
      }
    }
    float[] gamma = {1, 2, 3, 4, 5, 6};
    float[] beta = {0, 1, 0, 1, 0, 1};
    Tensor yFirst = ReferenceOps.groupNorm(new Tensor(first, new long[] {n, c, h, w}), gamma, beta, 3, 1e-5f, true,
        false);
    Tensor yLast = ReferenceOps.groupNorm(new Tensor(last, new long[] {n, h, w, c}), gamma, beta, 3, 1e-5f, true,
        true);
    for (int b = 0; b < n; b++) {
      for (int ch = 0; ch < c; ch++) {
        for (int p = 0; p < h * w; p++) {
          assertEquals(yFirst.data()[(b * c + ch) * h * w + p], yLast.data()[(b * h * w + p) * c + ch], 0);
        }
      }
    }
  }

  @Test
  void attentionOverOneKeyReturnsThatValue() {
    Tensor query = new Tensor(new float[] {1, 2, 3, 4}, new long[] {1, 1, 4});
    Tensor key = new Tensor(new float[] {5, 6, 7, 8}, new long[] {1, 1, 4});
    Tensor value = new Tensor(new float[] {9, 8, 7, 6}, new long[] {1, 1, 4});
    Tensor out = ReferenceOps.multiHeadAttention(query, key, value, null, 2, null);
    assertEquals(9, out.data()[0], 1e-6);
    assertEquals(6, out.data()[3], 1e-6);
  }
}
