package dev.kiln.runner.scheduler;

import dev.kiln.runner.noise.TorchGenerator;

/**
 * DPM-Solver++ (2M), Lu et al. 2022: a second-order multistep solver in log-SNR time on the data
 * prediction x0. The first step and the last (which lands on sigma = 0) are first order, as diffusers does
 * with its final sigma of zero. Latents stay variance preserving, so there is no input scaling.
 */
final class DpmSolverMultistepScheduler extends AlphaBarScheduler {
  private final double[] sigmas;
  private float[] previousClean;
  private int stepsTaken;

  DpmSolverMultistepScheduler(SchedulerConfig config, int steps) {
    this(config, Grid.of(config, steps));
  }

  private DpmSolverMultistepScheduler(SchedulerConfig config, Grid grid) {
    super(config, grid.timesteps());
    this.sigmas = grid.sigmas();
  }

  /** The step timesteps and their sigmas (one per step plus the final 0), Karras-spaced when configured. */
  private record Grid(double[] timesteps, double[] sigmas) {
    static Grid of(SchedulerConfig config, int steps) {
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
      return new Grid(spaced, java.util.Arrays.copyOf(stepSigmas, steps + 1));
    }
  }

  double[] sigmas() {
    return sigmas.clone();
  }

  private static double alpha(double sigma) {
    return 1.0 / Math.sqrt(sigma * sigma + 1);
  }

  /** log(alpha_t / sigma_t); +infinity at sigma = 0. */
  private static double logSnr(double sigma) {
    double alpha = alpha(sigma);
    double scaled = sigma * alpha;
    return scaled > 0 ? Math.log(alpha) - Math.log(scaled) : Double.POSITIVE_INFINITY;
  }

  @Override
  public float[] step(float[] modelOutput, int step, float[] latents, TorchGenerator generator) {
    Predictions.requireSameLength(modelOutput, latents);
    double alphaSource = alpha(sigmas[step]);
    double sigmaSource = sigmas[step] * alphaSource;
    double alphaTarget = alpha(sigmas[step + 1]);
    double sigmaTarget = sigmas[step + 1] * alphaTarget;
    float[] clean = Predictions.cleanEstimate(modelOutput, latents, alphaSource * alphaSource, config.vPrediction());
    double h = logSnr(sigmas[step + 1]) - logSnr(sigmas[step]);
    double decay = Double.isInfinite(h) ? 0.0 : Math.exp(-h);
    double ratio = sigmaTarget / sigmaSource;
    boolean firstOrder = stepsTaken == 0 || step == sigmas.length - 2;
    double r0 = 1;
    if (!firstOrder) {
      double hPrevious = logSnr(sigmas[step]) - logSnr(sigmas[step - 1]);
      r0 = hPrevious / h;
    }
    float[] result = new float[latents.length];
    for (int index = 0; index < latents.length; index++) {
      double value = ratio * latents[index] - alphaTarget * (decay - 1.0) * clean[index];
      if (!firstOrder) {
        double difference = (clean[index] - previousClean[index]) / r0;
        value -= 0.5 * alphaTarget * (decay - 1.0) * difference;
      }
      result[index] = (float) value;
    }
    previousClean = clean;
    stepsTaken++;
    return result;
  }

  @Override
  public float[] addNoise(float[] clean, float[] noise, int step) {
    double alpha = alpha(sigmas[step]);
    return VariancePreserving.mix(clean, noise, alpha * alpha);
  }
}
