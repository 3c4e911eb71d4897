package dev.kiln.runner.scheduler;

/** Conversions between what a UNet predicts (epsilon or v) and the clean-sample estimate x0. */
final class Predictions {
  private Predictions() {}

  /** x0 from a variance-preserving sample x_t = sqrt(a) x0 + sqrt(1 - a) eps and the model output. */
  static float[] cleanEstimate(float[] output, float[] sample, double alphaCumprod, boolean vPrediction) {
    double signal = Math.sqrt(alphaCumprod);
    double noise = Math.sqrt(1 - alphaCumprod);
    float[] result = new float[sample.length];
    for (int index = 0; index < sample.length; index++) {
      result[index] = vPrediction
          ? (float) (signal * sample[index] - noise * output[index])
          : (float) ((sample[index] - noise * output[index]) / signal);
    }
    return result;
  }

  static void requireSameLength(float[] output, float[] latents) {
    if (output.length != latents.length) {
      throw new IllegalArgumentException("model output has " + output.length + " values, latents " + latents.length);
    }
  }
}
