package dev.kiln.runner.scheduler;

import dev.kiln.common.KilnException;
import dev.kiln.runner.InvalidRequest;
import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;

/** The schedulers Kiln implements, by the names {@code --scheduler} accepts, with their usual step counts. */
public enum SchedulerKind {
  DDIM("ddim", 50),
  EULER("euler", 30),
  EULER_ANCESTRAL("euler-a", 30),
  LMS("lms", 50),
  DPMPP_2M("dpm++2m", 20),
  DPMPP_2M_KARRAS("dpm++2m-karras", 20),
  LCM("lcm", 4),
  PNDM("pndm", 50),
  UNIPC("unipc", 20);

  private final String cliName;
  private final int usualSteps;

  SchedulerKind(String cliName, int usualSteps) {
    this.cliName = cliName;
    this.usualSteps = usualSteps;
  }

  public String cliName() {
    return cliName;
  }

  public int usualSteps() {
    return usualSteps;
  }

  /**
   * A fresh scheduler for one run of {@code steps} steps. Steps outside 1..num_train_timesteps, or a count whose
   * schedule would leave the training timesteps or repeat one (steps_offset pushing "leading" past the end),
   * are refused as the request's {@code steps}, with the range.
   */
  public Scheduler create(SchedulerConfig config, int steps) {
    int count = config.trainTimesteps();
    int most = this == LCM ? Math.min(count, config.originalInferenceSteps()) : count;
    if (steps < 1 || steps > most) {
      throw new InvalidRequest("steps", "must be from 1 to " + most + " for " + cliName
          + (this == LCM && most < count ? " (the distilled schedule's original_inference_steps)" : " (the scheduler's num_train_timesteps)")
          + ", got " + steps);
    }
    Scheduler scheduler = switch (this) {
      case DDIM -> new DdimScheduler(config, steps);
      case EULER -> new EulerScheduler(config, steps, false);
      case EULER_ANCESTRAL -> new EulerScheduler(config, steps, true);
      case LMS -> new LmsScheduler(config, steps);
      case DPMPP_2M -> new DpmSolverMultistepScheduler(config, steps);
      case DPMPP_2M_KARRAS -> new DpmSolverMultistepScheduler(config.withKarrasSigmas(true), steps);
      case LCM -> new LcmScheduler(config, steps);
      case PNDM -> new PndmScheduler(config, steps);
      case UNIPC -> new UniPcScheduler(config, steps);
    };
    checkTimesteps(scheduler.timesteps(), config, steps);
    return scheduler;
  }

  /** Every timestep must be a training timestep, and (but for PNDM's deliberate repeat) each below the one before. */
  private void checkTimesteps(double[] timesteps, SchedulerConfig config, int steps) {
    int last = config.trainTimesteps() - 1;
    for (int index = 0; index < timesteps.length; index++) {
      double timestep = timesteps[index];
      if (!(timestep >= 0 && timestep <= last)) {
        throw new InvalidRequest("steps", steps + " with timestep_spacing " + config.timestepSpacing() + " and steps_offset " + config.stepsOffset()
            + " reaches timestep " + timestep + ", outside the training schedule 0.." + last + "; use fewer steps");
      }
      boolean repeatAllowed = this == PNDM && index == 2;
      if (index > 0 && !(timestep < timesteps[index - 1] || (repeatAllowed && timestep == timesteps[index - 1]))) {
        throw new InvalidRequest("steps", steps + " repeats timestep " + timestep + " of a " + (last + 1) + "-timestep schedule with "
            + config.timestepSpacing() + " spacing; use fewer steps");
      }
    }
  }

  /** UNet evaluations of a run of {@code steps} steps: PNDM repeats its second timestep, the others evaluate once a step. */
  public int evaluations(int steps) {
    return this == PNDM && steps > 1 ? steps + 1 : steps;
  }

  /** The names --scheduler accepts, comma separated. */
  public static String names() {
    return Arrays.stream(values()).map(SchedulerKind::cliName).collect(Collectors.joining(", "));
  }

  /** Parses a CLI name (also accepts diffusers-style aliases); unknown names are bad input listing the valid ones. */
  public static SchedulerKind parse(String name) {
    String normalized = name.trim().toLowerCase(Locale.ROOT).replace('_', '-');
    for (SchedulerKind kind : values()) {
      if (kind.cliName.equals(normalized)) {
        return kind;
      }
    }
    switch (normalized) {
      case "euler-ancestral", "euler-a-discrete", "eulerancestral" -> {
        return EULER_ANCESTRAL;
      }
      case "dpmpp-2m", "dpm++-2m", "dpm-solver++" -> {
        return DPMPP_2M;
      }
      case "dpmpp-2m-karras", "dpm++-2m-karras" -> {
        return DPMPP_2M_KARRAS;
      }
      case "uni-pc", "unipc-multistep" -> {
        return UNIPC;
      }
      default -> throw new KilnException.BadInput("unknown scheduler '" + name + "' (expected one of " + names() + ")");
    }
  }

  /** The scheduler named by a pipeline's {@code _class_name}, or null if Kiln has no equivalent. */
  public static SchedulerKind fromDiffusersClass(String className) {
    return switch (className == null ? "" : className) {
      case "DDIMScheduler" -> DDIM;
      case "EulerDiscreteScheduler" -> EULER;
      case "EulerAncestralDiscreteScheduler" -> EULER_ANCESTRAL;
      case "LMSDiscreteScheduler" -> LMS;
      case "DPMSolverMultistepScheduler" -> DPMPP_2M;
      case "LCMScheduler" -> LCM;
      case "PNDMScheduler" -> PNDM;
      case "UniPCMultistepScheduler" -> UNIPC;
      default -> null;
    };
  }
}
