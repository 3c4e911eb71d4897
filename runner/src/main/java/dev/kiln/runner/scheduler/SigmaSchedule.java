package dev.kiln.runner.scheduler;

/**
 * The Karras-style view shared by Euler, Euler ancestral and LMS: latents live at scale sigma (x = x0 +
 * sigma eps), the UNet sees x / sqrt(sigma^2 + 1) and its timestep is the training timestep of that sigma.
 */
final class SigmaSchedule {
  final SchedulerConfig config;
  final double[] timesteps;
  /** One per step plus the final 0. */
  final double[] sigmas;

  SigmaSchedule(SchedulerConfig config, int steps) {
    this.config = config;
    NoiseSchedule schedule = new NoiseSchedule(config);
    double[] spaced = NoiseSchedule.spacedTimesteps(config, steps, false);
    double[] stepSigmas = new double[steps];
    for (int index = 0; index < steps; index++) {
      stepSigmas[index] = schedule.sigmaAt(spaced[index]);
    }
    if (config.useKarrasSigmas()) {
      stepSigmas = NoiseSchedule.karrasSigmas(stepSigmas[0], stepSigmas[steps - 1], steps);
      for (int index = 0; index < steps; index++) {
        spaced[index] = schedule.sigmaToTimestep(stepSigmas[index]);
      }
    }
    this.timesteps = spaced;
    this.sigmas = java.util.Arrays.copyOf(stepSigmas, steps + 1);
  }

  double initNoiseSigma() {
    double maximum = sigmas[0];
    return config.timestepSpacing().equals("leading") ? Math.sqrt(maximum * maximum + 1) : maximum;
  }

  float[] scale(float[] latents, int step) {
    double divisor = Math.sqrt(sigmas[step] * sigmas[step] + 1);
    float[] result = new float[latents.length];
    for (int index = 0; index < latents.length; index++) {
      result[index] = (float) (latents[index] / divisor);
    }
    return result;
  }

  /** dx/dsigma = (x - x0) / sigma, with x0 from an epsilon or v prediction made on the scaled input. */
  double[] derivative(float[] output, float[] latents, int step) {
    double sigma = sigmas[step];
    double[] result = new double[latents.length];
    for (int index = 0; index < latents.length; index++) {
      double clean = config.vPrediction()
          ? output[index] * (-sigma / Math.sqrt(sigma * sigma + 1)) + latents[index] / (sigma * sigma + 1)
          : latents[index] - sigma * output[index];
      result[index] = (latents[index] - clean) / sigma;
    }
    return result;
  }

  float[] addNoise(float[] clean, float[] noise, int step) {
    float[] result = new float[clean.length];
    for (int index = 0; index < clean.length; index++) {
      result[index] = (float) (clean[index] + noise[index] * sigmas[step]);
    }
    return result;
  }
}
