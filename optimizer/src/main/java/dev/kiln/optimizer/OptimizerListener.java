package dev.kiln.optimizer;

import dev.kiln.optimizer.profiles.Component;

/**
 * Told how an optimization advances, so a command can draw progress on long work (a full-size UNet takes
 * 15-40 s). Called on the optimizing thread, between steps; it must not touch the model.
 */
public interface OptimizerListener {
  OptimizerListener NONE = new OptimizerListener() {};

  /** A model starts: its label (the path it was read from), its component and how many profile steps it will run. */
  default void componentStarted(String label, Component component, int steps) {}

  /** Profile step {@code index} (1-based) of {@code steps} starts: a sweep of rules (named by its rules) or a pass. */
  default void stepStarted(String step, int index, int steps) {}

  /** Profile step {@code done} of {@code steps} finished: a sweep of rules (named by its rules) or a pass. */
  default void stepFinished(String step, int done, int steps) {}

  /** The precision stage ({@code fp16} or {@code mixed}) starts, after the last profile step. */
  default void precisionStarted(String mode) {}
}
