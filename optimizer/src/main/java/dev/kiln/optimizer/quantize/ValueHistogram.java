package dev.kiln.optimizer.quantize;

/**
 * The distribution of one tensor's calibration values: exact min and max, and a histogram over [−R, R] whose bound R
 * is the smallest power of two covering every value seen. Growing R doubles it and merges bins pairwise, which is
 * exact, so the result does not depend on the order the values came in (a fixed range would need a second pass).
 */
final class ValueHistogram {
  static final int BINS = 4096;

  private final long[] counts = new long[BINS];
  private double bound;
  private double min = Double.POSITIVE_INFINITY;
  private double max = Double.NEGATIVE_INFINITY;
  private long total;

  void add(float[] values) {
    double peak = 0;
    for (float value : values) {
      if (Float.isFinite(value)) {
        peak = Math.max(peak, Math.abs(value));
        min = Math.min(min, value);
        max = Math.max(max, value);
      }
    }
    grow(peak);
    double width = 2 * bound / BINS;
    for (float value : values) {
      if (Float.isFinite(value)) {
        int bin = (int) Math.floor((value + bound) / width);
        counts[Math.max(0, Math.min(BINS - 1, bin))]++;
        total++;
      }
    }
  }

  private void grow(double peak) {
    if (bound == 0) {
      bound = 0x1p-24;
    }
    while (bound < peak) {
      // New bin BINS/4 + j covers old bins 2j and 2j+1: the old range is the middle half of the doubled one.
      long[] merged = new long[BINS];
      for (int j = 0; j < BINS / 2; j++) {
        merged[BINS / 4 + j] = counts[2 * j] + counts[2 * j + 1];
      }
      System.arraycopy(merged, 0, counts, 0, BINS);
      bound *= 2;
    }
  }

  long count() {
    return total;
  }

  double min() {
    return total == 0 ? 0 : min;
  }

  double max() {
    return total == 0 ? 0 : max;
  }

  /**
   * The range holding all but {@code (1 − fraction)} of the values in each tail: the lower edge of the bin where the
   * low tail's mass is reached and the upper edge of the bin where the high tail's is, clamped to the exact extremes.
   */
  double[] percentileRange(double fraction) {
    if (total == 0) {
      return new double[] {0, 0};
    }
    double width = 2 * bound / BINS;
    long tail = (long) Math.floor(total * (1 - fraction));
    long seen = 0;
    int low = 0;
    while (low < BINS - 1 && seen + counts[low] <= tail) {
      seen += counts[low++];
    }
    seen = 0;
    int high = BINS - 1;
    while (high > 0 && seen + counts[high] <= tail) {
      seen += counts[high--];
    }
    double lower = Math.max(min, -bound + low * width);
    double upper = Math.min(max, -bound + (high + 1) * width);
    return new double[] {Math.min(lower, upper), Math.max(lower, upper)};
  }
}
