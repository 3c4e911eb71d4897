package dev.kiln.runner.scheduler;

import dev.kiln.runner.noise.TorchGenerator;
import java.util.ArrayDeque;
import java.util.Deque;

/**
 * Linear multistep (order 4) on the sigma ODE: the next latents add the integral, over [sigma_i,
 * sigma_i+1], of the Lagrange polynomial through the last derivatives. The polynomial is integrated exactly
 * (its coefficients are expanded), where diffusers calls numerical quadrature.
 */
final class LmsScheduler extends SigmaScheduler {
  private static final int ORDER = 4;
  private final Deque<double[]> derivatives = new ArrayDeque<>();

  LmsScheduler(SchedulerConfig config, int steps) {
    super(config, steps);
  }

  @Override
  public float[] step(float[] modelOutput, int step, float[] latents, TorchGenerator generator) {
    Predictions.requireSameLength(modelOutput, latents);
    derivatives.addFirst(schedule.derivative(modelOutput, latents, step));
    while (derivatives.size() > ORDER) {
      derivatives.removeLast();
    }
    int order = Math.min(derivatives.size(), step + 1);
    double[] result = new double[latents.length];
    for (int index = 0; index < latents.length; index++) {
      result[index] = latents[index];
    }
    int lag = 0;
    for (double[] derivative : derivatives) {
      if (lag >= order) {
        break;
      }
      double coefficient = coefficient(order, step, lag);
      for (int index = 0; index < latents.length; index++) {
        result[index] += coefficient * derivative[index];
      }
      lag++;
    }
    float[] output = new float[latents.length];
    for (int index = 0; index < latents.length; index++) {
      output[index] = (float) result[index];
    }
    return output;
  }

  /** Integral from sigma_step to sigma_step+1 of the Lagrange basis polynomial for sigma_(step - lag). */
  private double coefficient(int order, int step, int lag) {
    double[] sigmas = schedule.sigmas;
    double[] polynomial = {1.0};
    for (int other = 0; other < order; other++) {
      if (other == lag) {
        continue;
      }
      double denominator = sigmas[step - lag] - sigmas[step - other];
      double[] product = new double[polynomial.length + 1];
      for (int power = 0; power < polynomial.length; power++) {
        product[power + 1] += polynomial[power] / denominator;
        product[power] -= polynomial[power] * sigmas[step - other] / denominator;
      }
      polynomial = product;
    }
    return antiderivative(polynomial, sigmas[step + 1]) - antiderivative(polynomial, sigmas[step]);
  }

  private static double antiderivative(double[] polynomial, double at) {
    double sum = 0;
    for (int power = polynomial.length - 1; power >= 0; power--) {
      sum = sum * at + polynomial[power] / (power + 1);
    }
    return sum * at;
  }
}
