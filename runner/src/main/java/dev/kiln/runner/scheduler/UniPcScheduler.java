package dev.kiln.runner.scheduler;

import dev.kiln.common.KilnException;
import dev.kiln.runner.noise.TorchGenerator;

/**
 * UniPC (Zhao et al. 2023) as diffusers' UniPCMultistepScheduler runs it by default: data prediction (x0),
 * the B(h) = e^h - 1 variant ("bh2"), order 2 with a first-order first step and last step, a final sigma of 0.
 * Each step first corrects the previous prediction with the new model output (UniC), then predicts the next
 * sample (UniP); both work in log-SNR time on the {@link SolverGrid} that DPM-Solver++ uses.
 */
final class UniPcScheduler extends AlphaBarScheduler {
  private static final int ORDER = 2;
  private final double[] sigmas;
  /** Converted (x0) model outputs of the last two steps, newest last, and the steps they came from. */
  private final float[][] outputs = new float[ORDER][];
  private final int[] outputSteps = new int[ORDER];
  private float[] lastSample;
  private int lastOrder;
  private int lowerOrderSteps;

  UniPcScheduler(SchedulerConfig config, int steps) {
    this(config, SolverGrid.of(config, steps));
  }

  private UniPcScheduler(SchedulerConfig config, SolverGrid grid) {
    super(config, grid.timesteps());
    this.sigmas = grid.sigmas();
    if (config.solverOrder() != ORDER || !config.solverType().equals("bh2")) {
      throw new KilnException.Unsupported("unipc scheduler: the config asks for solver_order " + config.solverOrder() + " and solver_type '"
          + config.solverType() + "'; Kiln implements diffusers' defaults, order 2 with bh2");
    }
  }

  double[] sigmas() {
    return sigmas.clone();
  }

  @Override
  public float[] step(float[] modelOutput, int step, float[] latents, TorchGenerator generator) {
    Predictions.requireSameLength(modelOutput, latents);
    double alphaNow = SolverGrid.alpha(sigmas[step]);
    float[] converted = Predictions.cleanEstimate(modelOutput, latents, alphaNow * alphaNow, config.vPrediction());
    float[] sample = latents;
    if (lastSample != null) {
      sample = correct(converted, step);
    }
    outputs[0] = outputs[1];
    outputSteps[0] = outputSteps[1];
    outputs[1] = converted;
    outputSteps[1] = step;
    int order = Math.min(ORDER, timesteps.length - step);
    order = Math.min(order, lowerOrderSteps + 1);
    lastOrder = order;
    lastSample = sample;
    float[] result = predict(sample, step, order);
    if (lowerOrderSteps < ORDER) {
      lowerOrderSteps++;
    }
    return result;
  }

  /** UniP: the next sample from this step's x0 prediction (and the previous one for order 2, with rho = 1/2). */
  private float[] predict(float[] sample, int step, int order) {
    double sigmaTarget = sigmas[step + 1];
    double alphaTarget = SolverGrid.alpha(sigmaTarget);
    double scaledTarget = sigmaTarget * alphaTarget;
    double alphaSource = SolverGrid.alpha(sigmas[step]);
    double scaledSource = sigmas[step] * alphaSource;
    double h = SolverGrid.logSnr(sigmaTarget) - SolverGrid.logSnr(sigmas[step]);
    double phi = Math.expm1(-h);
    float[] m0 = outputs[1];
    float[] result = new float[sample.length];
    double rk = order == 2 ? (SolverGrid.logSnr(sigmas[step - 1]) - SolverGrid.logSnr(sigmas[step])) / h : 1;
    for (int index = 0; index < sample.length; index++) {
      double value = scaledTarget / scaledSource * sample[index] - alphaTarget * phi * m0[index];
      if (order == 2) {
        double difference = (outputs[0][index] - m0[index]) / rk;
        value -= alphaTarget * phi * 0.5 * difference;
      }
      result[index] = (float) value;
    }
    return result;
  }

  /** UniC: corrects the sample the last predictor produced, using the model output at it. */
  private float[] correct(float[] modelNow, int step) {
    int order = lastOrder;
    double sigmaTarget = sigmas[step];
    double alphaTarget = SolverGrid.alpha(sigmaTarget);
    double scaledTarget = sigmaTarget * alphaTarget;
    double alphaSource = SolverGrid.alpha(sigmas[step - 1]);
    double scaledSource = sigmas[step - 1] * alphaSource;
    double lambdaSource = SolverGrid.logSnr(sigmas[step - 1]);
    double h = SolverGrid.logSnr(sigmaTarget) - lambdaSource;
    double hh = -h;
    double phi = Math.expm1(hh);
    double bh = Math.expm1(hh);
    // b_i = h_phi_k * i! / B(h) with h_phi_k following phi_{k+1}(h) = (phi_k(h) - 1/k!) / h, in diffusers' order.
    double hPhiK = phi / hh - 1;
    double[] b = new double[order];
    double factorial = 1;
    for (int index = 1; index <= order; index++) {
      b[index - 1] = hPhiK * factorial / bh;
      factorial *= index + 1;
      hPhiK = hPhiK / hh - 1 / factorial;
    }
    float[] m0 = outputs[1];
    float[] x = lastSample;
    double rhoOlder = 0;
    double rhoNow;
    double rk = 1;
    if (order == 1) {
      rhoNow = 0.5;
    } else {
      // Solve [[1, 1], [rk, 1]] rho = b for the 2x2 system of order 2.
      rk = (SolverGrid.logSnr(sigmas[step - 2]) - lambdaSource) / h;
      double determinant = 1 - rk;
      rhoOlder = (b[0] - b[1]) / determinant;
      rhoNow = (b[1] - rk * b[0]) / determinant;
    }
    float[] result = new float[x.length];
    for (int index = 0; index < x.length; index++) {
      double value = scaledTarget / scaledSource * x[index] - alphaTarget * phi * m0[index];
      double correction = rhoNow * (modelNow[index] - m0[index]);
      if (order == 2) {
        correction += rhoOlder * (outputs[0][index] - m0[index]) / rk;
      }
      result[index] = (float) (value - alphaTarget * bh * correction);
    }
    return result;
  }

  @Override
  public float[] addNoise(float[] clean, float[] noise, int step) {
    double alpha = SolverGrid.alpha(sigmas[step]);
    return VariancePreserving.mix(clean, noise, alpha * alpha);
  }
}
