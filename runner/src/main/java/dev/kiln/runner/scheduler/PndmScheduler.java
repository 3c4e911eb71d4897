package dev.kiln.runner.scheduler;

import dev.kiln.common.KilnException;
import dev.kiln.runner.noise.TorchGenerator;
import java.util.ArrayDeque;
import java.util.Deque;

/**
 * PNDM (Liu et al. 2022) as Stable Diffusion 1.x ships it: diffusers' PNDMScheduler with {@code skip_prk_steps},
 * i.e. pseudo linear multistep (PLMS) only. The UNet is evaluated steps + 1 times: the second timestep repeats,
 * because the first step is redone from the same sample with the average of two noise predictions (a Heun-like
 * start), after which 2-, 3- and 4-step Adams-Bashforth combinations of the stored noise predictions drive the
 * transfer x_t -> x_{t - ratio} of the paper's eq. 11. With v-prediction the combined output is converted to
 * epsilon inside the transfer, as diffusers does.
 */
final class PndmScheduler extends AlphaBarScheduler {
  private final int ratio;
  private final Deque<float[]> history = new ArrayDeque<>();
  private float[] firstSample;
  private int counter;

  PndmScheduler(SchedulerConfig config, int steps) {
    super(config, plmsTimesteps(config, steps));
    if (!config.skipPrkSteps()) {
      throw new KilnException.Unsupported("pndm scheduler: the config sets skip_prk_steps false (Runge-Kutta warm-up steps), which Kiln"
          + " does not implement; Stable Diffusion's configs set it true, or choose another scheduler");
    }
    this.ratio = config.trainTimesteps() / steps;
  }

  /** The spaced timesteps ascending t_0 < ... < t_{n-1}, returned as t_{n-1}, t_{n-2}, t_{n-2}, t_{n-3}, ..., t_0. */
  private static double[] plmsTimesteps(SchedulerConfig config, int steps) {
    double[] descending = NoiseSchedule.spacedTimesteps(config, steps, true);
    if (steps == 1) {
      return descending;
    }
    double[] result = new double[steps + 1];
    result[0] = descending[0];
    result[1] = descending[1];
    System.arraycopy(descending, 1, result, 2, steps - 1);
    return result;
  }

  @Override
  public float[] step(float[] modelOutput, int step, float[] latents, TorchGenerator generator) {
    Predictions.requireSameLength(modelOutput, latents);
    int timestep = (int) timesteps[step];
    int previous = timestep - ratio;
    float[] sample = latents;
    float[] combined;
    if (counter == 1) {
      // The repeated timestep: redo the first transfer from the first sample with the averaged prediction.
      previous = timestep;
      timestep = timestep + ratio;
      float[] first = history.peekLast();
      combined = new float[modelOutput.length];
      for (int index = 0; index < combined.length; index++) {
        combined[index] = (modelOutput[index] + first[index]) / 2;
      }
      sample = firstSample;
      firstSample = null;
    } else {
      while (history.size() > 3) {
        history.removeFirst();
      }
      history.addLast(modelOutput);
      combined = combine();
      if (counter == 0) {
        firstSample = latents;
      }
    }
    counter++;
    return transfer(sample, timestep, previous, combined);
  }

  /** The linear multistep combination of the stored predictions, newest last. */
  private float[] combine() {
    float[][] outputs = history.toArray(new float[0][]);
    int count = outputs.length;
    float[] last = outputs[count - 1];
    if (count == 1) {
      return last;
    }
    float[] result = new float[last.length];
    for (int index = 0; index < result.length; index++) {
      double value;
      if (count == 2) {
        value = (3 * last[index] - outputs[0][index]) / 2;
      } else if (count == 3) {
        value = (23 * last[index] - 16 * outputs[1][index] + 5 * outputs[0][index]) / 12;
      } else {
        value = (55 * last[index] - 59 * outputs[2][index] + 37 * outputs[1][index] - 9 * outputs[0][index]) / 24;
      }
      result[index] = (float) value;
    }
    return result;
  }

  /** PNDM's transfer (eq. 11 of the paper, diffusers' _get_prev_sample) from timestep to previous. */
  private float[] transfer(float[] sample, int timestep, int previous, float[] output) {
    double alpha = schedule.alphaCumprod(timestep);
    double alphaPrevious = alphaCumprodOrFinal(previous);
    double beta = 1 - alpha;
    double betaPrevious = 1 - alphaPrevious;
    double sampleCoefficient = Math.sqrt(alphaPrevious / alpha);
    double denominator = alpha * Math.sqrt(betaPrevious) + Math.sqrt(alpha * beta * alphaPrevious);
    float[] result = new float[sample.length];
    for (int index = 0; index < sample.length; index++) {
      double epsilon = config.vPrediction() ? Math.sqrt(alpha) * output[index] + Math.sqrt(beta) * sample[index] : output[index];
      result[index] = (float) (sampleCoefficient * sample[index] - (alphaPrevious - alpha) * epsilon / denominator);
    }
    return result;
  }
}
