package dev.kiln.runner.scheduler;

import dev.kiln.runner.noise.TorchGenerator;

/**
 * DDIM (Song et al. 2020) with eta = 0, the deterministic sampler: predict x0, then jump to the previous
 * timestep's noise level along the predicted noise direction.
 */
final class DdimScheduler extends AlphaBarScheduler {
  private final int stride;

  DdimScheduler(SchedulerConfig config, int steps) {
    super(config, NoiseSchedule.spacedTimesteps(config, steps, true));
    this.stride = config.trainTimesteps() / steps;
  }

  @Override
  public float[] step(float[] modelOutput, int step, float[] latents, TorchGenerator generator) {
    Predictions.requireSameLength(modelOutput, latents);
    int timestep = (int) timesteps[step];
    int previous = timestep - stride;
    double alpha = schedule.alphaCumprod(timestep);
    double alphaPrevious = alphaCumprodOrFinal(previous);
    float[] clean = Predictions.cleanEstimate(modelOutput, latents, alpha, config.vPrediction());
    double range = config.clipSampleRange();
    float[] result = new float[latents.length];
    for (int index = 0; index < latents.length; index++) {
      double x0 = clean[index];
      if (config.clipSample()) {
        x0 = Math.max(-range, Math.min(range, x0));
      }
      double epsilon = (latents[index] - Math.sqrt(alpha) * x0) / Math.sqrt(1 - alpha);
      result[index] = (float) (Math.sqrt(alphaPrevious) * x0 + Math.sqrt(1 - alphaPrevious) * epsilon);
    }
    return result;
  }
}
