package dev.kiln.runner.pipeline;

import java.util.Map;

/** Hooks into a generation: progress after each UNet step, and (for tests and --explain) the UNet's exact inputs. */
public interface StepListener {
  StepListener NONE = new StepListener() {};

  default void stepDone(int step, int total) {}

  default void unetInputs(int step, Map<String, ModelInput> inputs) {}

  /** The latents after step {@code step} (parity checks against a reference sampler). */
  default void latentsAfterStep(int step, float[] latents) {}
}
