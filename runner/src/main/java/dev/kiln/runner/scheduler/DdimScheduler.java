package dev.kiln.runner.scheduler;

import dev.kiln.runner.noise.TorchGenerator;

/**
 * DDIM (Song et al. 2020) with eta = 0, the deterministic sampler: predict x0, then jump to the previous
 * timestep's noise level along the predicted noise direction.
 */
final class DdimScheduler implements Scheduler {
  private final SchedulerConfig config;
  private final NoiseSchedule schedule;
  private final double[] timesteps;
  private final int stride;
  private final double finalAlphaCumprod;

  DdimScheduler(SchedulerConfig config, int steps) {
    this.config = config;
    this.schedule = new NoiseSchedule(config);
    this.timesteps = NoiseSchedule.spacedTimesteps(config, steps, true);
    this.stride = config.trainTimesteps() / steps;
    this.finalAlphaCumprod = config.setAlphaToOne() ? 1.0 : schedule.alphaCumprod(0);
  }

  @Override
  public double[] timesteps() {
    return timesteps.clone();
  }

  @Override
  public double initNoiseSigma() {
    return 1.0;
  }

  @Override
  public float[] scaleModelInput(float[] latents, int step) {
    return latents;
  }

  @Override
  public float[] step(float[] modelOutput, int step, float[] latents, TorchGenerator generator) {
    Predictions.requireSameLength(modelOutput, latents);
    int timestep = (int) timesteps[step];
    int previous = timestep - stride;
    double alpha = schedule.alphaCumprod(timestep);
    double alphaPrevious = previous >= 0 ? schedule.alphaCumprod(previous) : finalAlphaCumprod;
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

  @Override
  public float[] addNoise(float[] clean, float[] noise, int step) {
    double alpha = schedule.alphaCumprod((int) timesteps[step]);
    return VariancePreserving.mix(clean, noise, alpha);
  }
}
