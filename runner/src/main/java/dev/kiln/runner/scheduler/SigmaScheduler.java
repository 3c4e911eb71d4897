package dev.kiln.runner.scheduler;

/**
 * Base of the schedulers that work on the {@link SigmaSchedule} (Euler, Euler ancestral, LMS): timesteps,
 * initial noise, input scaling and img2img noising all come from the sigma schedule; only the step differs.
 */
abstract class SigmaScheduler implements Scheduler {
  final SigmaSchedule schedule;

  SigmaScheduler(SchedulerConfig config, int steps) {
    this.schedule = new SigmaSchedule(config, steps);
  }

  @Override
  public double[] timesteps() {
    return schedule.timesteps.clone();
  }

  /** One per step plus the final 0 (the reference test compares them with diffusers'). */
  double[] sigmas() {
    return schedule.sigmas.clone();
  }

  @Override
  public double initNoiseSigma() {
    return schedule.initNoiseSigma();
  }

  @Override
  public float[] scaleModelInput(float[] latents, int step) {
    return schedule.scale(latents, step);
  }

  @Override
  public float[] addNoise(float[] clean, float[] noise, int step) {
    return schedule.addNoise(clean, noise, step);
  }
}
