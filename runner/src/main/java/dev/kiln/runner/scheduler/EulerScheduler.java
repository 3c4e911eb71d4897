package dev.kiln.runner.scheduler;

import dev.kiln.runner.noise.TorchGenerator;

/**
 * Euler's method on the probability-flow ODE in sigma (Karras et al. 2022, Algorithm 1 without churn);
 * with {@code ancestral}, each step goes down to sigma_down and adds fresh noise of size sigma_up.
 */
final class EulerScheduler extends SigmaScheduler {
  private final boolean ancestral;

  EulerScheduler(SchedulerConfig config, int steps, boolean ancestral) {
    super(config, steps);
    this.ancestral = ancestral;
  }

  @Override
  public float[] step(float[] modelOutput, int step, float[] latents, TorchGenerator generator) {
    Predictions.requireSameLength(modelOutput, latents);
    double sigma = schedule.sigmas[step];
    double next = schedule.sigmas[step + 1];
    double[] derivative = schedule.derivative(modelOutput, latents, step);
    double target = next;
    double up = 0;
    if (ancestral) {
      up = Math.sqrt(next * next * (sigma * sigma - next * next) / (sigma * sigma));
      target = Math.sqrt(next * next - up * up);
    }
    float[] result = new float[latents.length];
    for (int index = 0; index < latents.length; index++) {
      result[index] = (float) (latents[index] + derivative[index] * (target - sigma));
    }
    if (ancestral) {
      float[] noise = generator.randn(latents.length);
      for (int index = 0; index < latents.length; index++) {
        result[index] = (float) (result[index] + noise[index] * up);
      }
    }
    return result;
  }
}
