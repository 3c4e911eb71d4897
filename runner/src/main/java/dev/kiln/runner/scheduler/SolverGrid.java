package dev.kiln.runner.scheduler;

import java.util.Arrays;

/**
 * The step timesteps and sigmas of diffusers' multistep solvers (DPM-Solver++, UniPC): one timestep per step,
 * spaced over steps + 1 points for "linspace" and "leading" (the last point, 0, is dropped), Karras-spaced
 * when configured, and one sigma per step plus a final 0. Latents stay variance preserving, so the solvers
 * work with alpha = 1 / sqrt(sigma^2 + 1) and log-SNR lambda = log(alpha / (sigma * alpha)).
 */
record SolverGrid(double[] timesteps, double[] sigmas) {
  static SolverGrid of(SchedulerConfig config, int steps) {
    NoiseSchedule schedule = new NoiseSchedule(config);
    int count = config.trainTimesteps();
    double[] spaced = new double[steps];
    switch (config.timestepSpacing()) {
      case "linspace" -> {
        double[] values = NoiseSchedule.linspace(0, count - 1, steps + 1);
        for (int index = 0; index < steps; index++) {
          spaced[index] = Math.rint(values[steps - index]);
        }
      }
      case "leading" -> {
        int ratio = count / (steps + 1);
        for (int index = 0; index < steps; index++) {
          spaced[index] = (double) (steps - index) * ratio + config.stepsOffset();
        }
      }
      default -> spaced = NoiseSchedule.spacedTimesteps(config, steps, true);
    }
    double[] stepSigmas = new double[steps];
    if (config.useKarrasSigmas()) {
      stepSigmas = NoiseSchedule.karrasSigmas(schedule.trainSigma(count - 1), schedule.trainSigma(0), steps);
      for (int index = 0; index < steps; index++) {
        spaced[index] = Math.rint(schedule.sigmaToTimestep(stepSigmas[index]));
      }
    } else {
      for (int index = 0; index < steps; index++) {
        stepSigmas[index] = schedule.sigmaAt(spaced[index]);
      }
    }
    return new SolverGrid(spaced, Arrays.copyOf(stepSigmas, steps + 1));
  }

  static double alpha(double sigma) {
    return 1.0 / Math.sqrt(sigma * sigma + 1);
  }

  /** log(alpha_t / sigma_t); +infinity at sigma = 0. */
  static double logSnr(double sigma) {
    double alpha = alpha(sigma);
    double scaled = sigma * alpha;
    return scaled > 0 ? Math.log(alpha) - Math.log(scaled) : Double.POSITIVE_INFINITY;
  }
}
