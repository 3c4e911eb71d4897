package dev.kiln.optimizer.quantize;

import dev.kiln.graph.DataType;

/**
 * One tensor's linear quantization, {@code real = scale · (q − zeroPoint)}, for a per-tensor activation. The range
 * always contains zero (zero padding and ReLU-like zeros must be exact), and a degenerate range still gets a
 * positive scale.
 */
record QuantizationParameters(float scale, int zeroPoint, DataType type) {

  static QuantizationParameters forRange(double min, double max, boolean signed) {
    double low = Math.min(0, min);
    double high = Math.max(0, max);
    double scale = (high - low) / 255;
    if (!(scale > 0) || !Double.isFinite(scale)) {
      scale = 1;
    }
    float stored = (float) scale;
    int qmin = signed ? -128 : 0;
    int zeroPoint = (int) Math.round(qmin - low / stored);
    zeroPoint = Math.max(qmin, Math.min(qmin + 255, zeroPoint));
    return new QuantizationParameters(stored, zeroPoint, signed ? DataType.INT8 : DataType.UINT8);
  }
}
