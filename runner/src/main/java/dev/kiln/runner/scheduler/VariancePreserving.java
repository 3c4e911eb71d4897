package dev.kiln.runner.scheduler;

/** sqrt(a) x0 + sqrt(1 - a) noise: the forward process every alpha-bar scheduler uses for img2img. */
final class VariancePreserving {
  private VariancePreserving() {}

  static float[] mix(float[] clean, float[] noise, double alphaCumprod) {
    double signal = Math.sqrt(alphaCumprod);
    double spread = Math.sqrt(1 - alphaCumprod);
    float[] result = new float[clean.length];
    for (int index = 0; index < clean.length; index++) {
      result[index] = (float) (signal * clean[index] + spread * noise[index]);
    }
    return result;
  }
}
