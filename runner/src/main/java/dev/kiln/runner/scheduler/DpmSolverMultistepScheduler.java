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
    this(config, SolverGrid.of(config, steps));
  }

  private DpmSolverMultistepScheduler(SchedulerConfig config, SolverGrid grid) {
    super(config, grid.timesteps());
    this.sigmas = grid.sigmas();
  }

  double[] sigmas() {
    return sigmas.clone();
  }


  @Override
  public float[] step(float[] modelOutput, int step, float[] latents, TorchGenerator generator) {
    Predictions.requireSameLength(modelOutput, latents);
    double alphaSource = SolverGrid.alpha(sigmas[step]);
    double sigmaSource = sigmas[step] * alphaSource;
    double alphaTarget = SolverGrid.alpha(sigmas[step + 1]);
    double sigmaTarget = sigmas[step + 1] * alphaTarget;
    float[] clean = Predictions.cleanEstimate(modelOutput, latents, alphaSource * alphaSource, config.vPrediction());
    double h = SolverGrid.logSnr(sigmas[step + 1]) - SolverGrid.logSnr(sigmas[step]);
    double decay = Double.isInfinite(h) ? 0.0 : Math.exp(-h);
    double ratio = sigmaTarget / sigmaSource;
    boolean firstOrder = stepsTaken == 0 || step == sigmas.length - 2;
    double r0 = 1;
    if (!firstOrder) {
      double hPrevious = SolverGrid.logSnr(sigmas[step]) - SolverGrid.logSnr(sigmas[step - 1]);
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
    double alpha = SolverGrid.alpha(sigmas[step]);
    return VariancePreserving.mix(clean, noise, alpha * alpha);
  }
}
