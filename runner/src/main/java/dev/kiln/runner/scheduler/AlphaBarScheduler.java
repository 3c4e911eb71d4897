package dev.kiln.runner.scheduler;

import dev.kiln.common.KilnException;

/**
 * Base of the schedulers whose latents stay variance preserving (DDIM, LCM, DPM-Solver++): the initial noise
 * has unit variance, the UNet sees the latents unscaled, and img2img mixes clean latents and noise by the
 * alpha-bar of the step's timestep.
 */
abstract class AlphaBarScheduler implements Scheduler {
  final SchedulerConfig config;
  final NoiseSchedule schedule;
  final double[] timesteps;

  AlphaBarScheduler(SchedulerConfig config, double[] timesteps) {
    this.config = config;
    this.schedule = new NoiseSchedule(config);
    this.timesteps = timesteps;
    // These schedulers index alpha-bar by timestep; steps_offset or original_inference_steps can push a
    // timestep past the training schedule, which must be refused here rather than fail as an index error.
    for (double timestep : timesteps) {
      if (!(timestep >= 0 && timestep < schedule.length())) {
        throw new KilnException.BadInput("scheduler config gives timestep " + (long) timestep + " for " + timesteps.length
            + " steps, outside the training schedule 0.." + (schedule.length() - 1) + " (num_train_timesteps "
            + config.trainTimesteps() + ", steps_offset " + config.stepsOffset() + ", timestep_spacing "
            + config.timestepSpacing() + ", original_inference_steps " + config.originalInferenceSteps() + ")");
      }
    }
  }

  @Override
  public double[] timesteps() {
    return timesteps.clone();
  }

  @Override
  public double initNoiseSigma() {
    return 1.0;
  }

  @Override
  public float[] scaleModelInput(float[] latents, int step) {
    return latents;
  }

  @Override
  public float[] addNoise(float[] clean, float[] noise, int step) {
    return VariancePreserving.mix(clean, noise, schedule.alphaCumprod((int) timesteps[step]));
  }

  /**
   * Alpha-bar at the timestep a step lands on; before the first training timestep (negative) the final
   * alpha-bar: 1 with set_alpha_to_one, else alpha-bar at timestep 0.
   */
  double alphaCumprodOrFinal(double timestep) {
    if (timestep >= 0) {
      return schedule.alphaCumprod((int) timestep);
    }
    return config.setAlphaToOne() ? 1.0 : schedule.alphaCumprod(0);
  }
}
