package dev.kiln.runner.scheduler;

/**
 * The training noise schedule and the timestep/sigma arithmetic every scheduler shares. Betas, alphas and
 * their cumulative product are computed in float32 in the order torch does (torch.linspace's two-sided
 * formula, a sequential cumprod), because that is what a diffusers pipeline uses; everything after is double.
 */
final class NoiseSchedule {
  private final double[] alphasCumprod;
  private final double[] sigmas;
  private final double[] logSigmas;

  NoiseSchedule(SchedulerConfig config) {
    int count = config.trainTimesteps();
    float[] betas;
    if (config.betaSchedule().equals("linear")) {
      betas = torchLinspace((float) config.betaStart(), (float) config.betaEnd(), count);
    } else {
      betas = torchLinspace((float) Math.sqrt(config.betaStart()), (float) Math.sqrt(config.betaEnd()), count);
      for (int index = 0; index < count; index++) {
        betas[index] = betas[index] * betas[index];
      }
    }
    alphasCumprod = new double[count];
    sigmas = new double[count];
    logSigmas = new double[count];
    float product = 1.0f;
    for (int index = 0; index < count; index++) {
      product *= 1.0f - betas[index];
      alphasCumprod[index] = product;
      sigmas[index] = Math.sqrt((1.0 - product) / product);
      logSigmas[index] = Math.log(sigmas[index]);
    }
  }

  /** torch.linspace for float32: the first half counts up from start, the second half down from end. */
  static float[] torchLinspace(float start, float end, int steps) {
    float[] values = new float[steps];
    if (steps == 1) {
      values[0] = start;
      return values;
    }
    float step = (end - start) / (steps - 1);
    int half = steps / 2;
    for (int index = 0; index < steps; index++) {
      values[index] = index < half ? start + step * index : end - step * (steps - index - 1);
    }
    return values;
  }

  int length() {
    return alphasCumprod.length;
  }

  double alphaCumprod(int timestep) {
    return alphasCumprod[timestep];
  }

  /** sqrt((1 - alpha-bar) / alpha-bar) at a possibly fractional timestep, linearly interpolated like np.interp. */
  double sigmaAt(double timestep) {
    if (timestep <= 0) {
      return sigmas[0];
    }
    if (timestep >= sigmas.length - 1) {
      return sigmas[sigmas.length - 1];
    }
    int low = (int) Math.floor(timestep);
    double fraction = timestep - low;
    return sigmas[low] + (sigmas[low + 1] - sigmas[low]) * fraction;
  }

  double trainSigma(int timestep) {
    return sigmas[timestep];
  }

  /** The fractional timestep whose log-sigma matches, by linear interpolation between neighbours. */
  double sigmaToTimestep(double sigma) {
    double logSigma = Math.log(Math.max(sigma, 1e-10));
    int low = 0;
    for (int index = 0; index < logSigmas.length; index++) {
      if (logSigmas[index] <= logSigma) {
        low = index;
      }
    }
    low = Math.min(low, logSigmas.length - 2);
    double weight = (logSigmas[low] - logSigma) / (logSigmas[low] - logSigmas[low + 1]);
    weight = Math.min(Math.max(weight, 0.0), 1.0);
    return (1 - weight) * low + weight * (low + 1);
  }

  /** Karras et al. (2022) eq. 5: sigmas evenly spaced in sigma^(1/7) from sigmaMax down to sigmaMin. */
  static double[] karrasSigmas(double sigmaMax, double sigmaMin, int steps) {
    double rho = 7.0;
    double high = Math.pow(sigmaMax, 1 / rho);
    double low = Math.pow(sigmaMin, 1 / rho);
    double[] result = new double[steps];
    for (int index = 0; index < steps; index++) {
      double ramp = steps == 1 ? 0 : (double) index / (steps - 1);
      result[index] = Math.pow(high + ramp * (low - high), rho);
    }
    return result;
  }

  /** numpy.linspace(start, end, count) in double. */
  static double[] linspace(double start, double end, int count) {
    double[] values = new double[count];
    if (count == 1) {
      values[0] = start;
      return values;
    }
    double step = (end - start) / (count - 1);
    for (int index = 0; index < count; index++) {
      values[index] = start + index * step;
    }
    values[count - 1] = end;
    return values;
  }

  /**
   * Descending inference timesteps for the three spacings of diffusers' "Common Diffusion Noise Schedules and
   * Sample Steps are Flawed" table. {@code integers} rounds the linspace variant (DDIM-style schedulers index
   * alpha-bar directly); sigma schedulers keep the fractional values.
   */
  static double[] spacedTimesteps(SchedulerConfig config, int steps, boolean integers) {
    int count = config.trainTimesteps();
    double[] result = new double[steps];
    switch (config.timestepSpacing()) {
      case "linspace" -> {
        double[] values = linspace(0, count - 1, steps);
        for (int index = 0; index < steps; index++) {
          double value = values[steps - 1 - index];
          result[index] = integers ? Math.rint(value) : value;
        }
      }
      case "leading" -> {
        int ratio = count / steps;
        for (int index = 0; index < steps; index++) {
          result[index] = (double) (steps - 1 - index) * ratio + config.stepsOffset();
        }
      }
      default -> {
        double ratio = (double) count / steps;
        for (int index = 0; index < steps; index++) {
          result[index] = Math.rint(count - index * ratio) - 1;
        }
      }
    }
    return result;
  }
}
