package dev.kiln.runner.scheduler;

import dev.kiln.runner.noise.TorchGenerator;

/**
 * One sampling run's scheduler: the timesteps the UNet sees, how to scale its input, and how a model output
 * moves the latents to the next step. Instances hold per-run history (LMS, DPM-Solver++), so a pipeline
 * makes a fresh one per generation through {@link SchedulerKind#create}.
 */
public interface Scheduler {
  /** The timestep passed to the UNet at each inference step, in order (descending). */
  double[] timesteps();

  /** How much the unit-variance initial noise is scaled before the first step. */
  double initNoiseSigma();

  /** The UNet input for the latents at step {@code step} (sigma schedulers divide by sqrt(sigma^2 + 1)). */
  float[] scaleModelInput(float[] latents, int step);

  /**
   * The latents after step {@code step} given the (guided) model output. Ancestral and consistency
   * schedulers draw fresh noise from {@code generator}, continuing the stream of the initial latents.
   */
  float[] step(float[] modelOutput, int step, float[] latents, TorchGenerator generator);

  /** Noised latents for img2img: the clean latents moved to the noise level of step {@code step}. */
  float[] addNoise(float[] clean, float[] noise, int step);

  /** The number of inference steps. */
  default int length() {
    return timesteps().length;
  }
}
