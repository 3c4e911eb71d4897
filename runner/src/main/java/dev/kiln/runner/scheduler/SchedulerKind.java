package dev.kiln.runner.scheduler;

import dev.kiln.common.KilnException;
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
  LCM("lcm", 4);

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

  /** A fresh scheduler for one run of {@code steps} steps. */
  public Scheduler create(SchedulerConfig config, int steps) {
    if (steps < 1) {
      throw new KilnException.BadInput("--steps must be at least 1, got " + steps);
    }
    return switch (this) {
      case DDIM -> new DdimScheduler(config, steps);
      case EULER -> new EulerScheduler(config, steps, false);
      case EULER_ANCESTRAL -> new EulerScheduler(config, steps, true);
      case LMS -> new LmsScheduler(config, steps);
      case DPMPP_2M -> new DpmSolverMultistepScheduler(config, steps);
      case DPMPP_2M_KARRAS -> new DpmSolverMultistepScheduler(config.withKarrasSigmas(true), steps);
      case LCM -> new LcmScheduler(config, steps);
    };
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
      default -> throw new KilnException.BadInput("unknown scheduler '" + name + "' (expected one of "
          + Arrays.stream(values()).map(SchedulerKind::cliName).collect(Collectors.joining(", ")) + ")");
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
      default -> null;
    };
  }
}
