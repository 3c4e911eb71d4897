package dev.kiln.runner.scheduler;

import dev.kiln.runner.noise.TorchGenerator;

/**
 * Latent consistency sampling (Luo et al. 2023): each step maps the latents straight to a denoised estimate
 * through the consistency boundary conditions c_skip / c_out, then re-noises it to the next timestep with
 * fresh noise. Timesteps are picked from the distillation's original 50-step schedule.
 */
final class LcmScheduler extends AlphaBarScheduler {
  private static final double SIGMA_DATA = 0.5;

  LcmScheduler(SchedulerConfig config, int steps) {
    super(config, distilledTimesteps(config, steps));
  }

  /** {@code steps} timesteps picked from the distillation's original schedule, after checking there are enough. */
  private static double[] distilledTimesteps(SchedulerConfig config, int steps) {
    int original = config.originalInferenceSteps();
    if (steps > original) {
      throw new dev.kiln.common.KilnException.BadInput(
          "lcm scheduler: steps " + steps + " exceeds the distilled schedule's original_inference_steps " + original);
    }
    int stride = config.trainTimesteps() / original;
    double[] timesteps = new double[steps];
    for (int index = 0; index < steps; index++) {
      int position = (int) Math.floor((double) index * original / steps);
      timesteps[index] = (double) (original - position) * stride - 1;
    }
    return timesteps;
  }

  @Override
  public float[] step(float[] modelOutput, int step, float[] latents, TorchGenerator generator) {
    Predictions.requireSameLength(modelOutput, latents);
    int timestep = (int) timesteps[step];
    boolean last = step == timesteps.length - 1;
    double alpha = schedule.alphaCumprod(timestep);
    double scaled = timestep * config.timestepScaling();
    double skip = SIGMA_DATA * SIGMA_DATA / (scaled * scaled + SIGMA_DATA * SIGMA_DATA);
    double out = scaled / Math.sqrt(scaled * scaled + SIGMA_DATA * SIGMA_DATA);
    float[] clean = Predictions.cleanEstimate(modelOutput, latents, alpha, config.vPrediction());
    float[] denoised = new float[latents.length];
    for (int index = 0; index < latents.length; index++) {
      denoised[index] = (float) (out * clean[index] + skip * latents[index]);
    }
    if (last) {
      return denoised;
    }
    double alphaPrevious = alphaCumprodOrFinal(timesteps[step + 1]);
    return VariancePreserving.mix(denoised, generator.randn(latents.length), alphaPrevious);
  }
}
