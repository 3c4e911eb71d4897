package dev.kiln.runner.scheduler;

import com.fasterxml.jackson.databind.JsonNode;
import dev.kiln.common.KilnException;
import dev.kiln.runner.config.JsonConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/**
 * The fields of a diffusers {@code scheduler_config.json} that change the sampling math. Absent fields take
 * diffusers' defaults; values Kiln cannot honour are rejected by name instead of being ignored.
 */
public record SchedulerConfig(
    double betaStart,
    double betaEnd,
    String betaSchedule,
    int trainTimesteps,
    String predictionType,
    String timestepSpacing,
    int stepsOffset,
    boolean clipSample,
    double clipSampleRange,
    boolean setAlphaToOne,
    boolean useKarrasSigmas,
    int originalInferenceSteps,
    double timestepScaling,
    boolean skipPrkSteps,
    int solverOrder,
    String solverType) {

  /** The most training timesteps Kiln accepts: every published model uses 1000; the schedule is held in arrays. */
  public static final int MAX_TRAIN_TIMESTEPS = 100_000;

  /** SD 1.5's published scheduler settings (PNDM/DDIM config of runwayml/stable-diffusion-v1-5). */
  public static SchedulerConfig stableDiffusion15() {
    return new SchedulerConfig(0.00085, 0.012, "scaled_linear", 1000, "epsilon", "leading", 1, false, 1.0, false, false, 50, 10.0,
        true, 2, "bh2");
  }


  public SchedulerConfig {
    if (!betaSchedule.equals("linear") && !betaSchedule.equals("scaled_linear")) {
      throw new KilnException.Unsupported("scheduler beta_schedule '" + betaSchedule + "' is not supported (expected linear or scaled_linear)");
    }
    if (!predictionType.equals("epsilon") && !predictionType.equals("v_prediction")) {
      throw new KilnException.Unsupported("scheduler prediction_type '" + predictionType + "' is not supported (expected epsilon or v_prediction)");
    }
    if (!timestepSpacing.equals("leading") && !timestepSpacing.equals("trailing") && !timestepSpacing.equals("linspace")) {
      throw new KilnException.Unsupported("scheduler timestep_spacing '" + timestepSpacing + "' is not supported (expected leading, trailing or linspace)");
    }
    if (trainTimesteps < 2 || trainTimesteps > MAX_TRAIN_TIMESTEPS) {
      throw new KilnException.BadInput("scheduler num_train_timesteps must be from 2 to " + MAX_TRAIN_TIMESTEPS + ", got " + trainTimesteps);
    }
    if (!(betaStart > 0 && betaEnd < 1 && betaStart <= betaEnd)) {
      throw new KilnException.BadInput("scheduler betas must satisfy 0 < beta_start <= beta_end < 1, got beta_start " + betaStart
          + " and beta_end " + betaEnd);
    }
    if (stepsOffset < 0 || stepsOffset >= trainTimesteps) {
      throw new KilnException.BadInput("scheduler steps_offset must be from 0 to num_train_timesteps - 1 = " + (trainTimesteps - 1)
          + ", got " + stepsOffset);
    }
  }

  public boolean vPrediction() {
    return predictionType.equals("v_prediction");
  }

  public SchedulerConfig withKarrasSigmas(boolean karras) {
    return new SchedulerConfig(betaStart, betaEnd, betaSchedule, trainTimesteps, predictionType, timestepSpacing, stepsOffset,
        clipSample, clipSampleRange, setAlphaToOne, karras, originalInferenceSteps, timestepScaling, skipPrkSteps, solverOrder, solverType);
  }

  public SchedulerConfig withSpacing(String spacing) {
    return new SchedulerConfig(betaStart, betaEnd, betaSchedule, trainTimesteps, predictionType, spacing, stepsOffset,
        clipSample, clipSampleRange, setAlphaToOne, useKarrasSigmas, originalInferenceSteps, timestepScaling, skipPrkSteps, solverOrder,
        solverType);
  }

  /** Reads {@code scheduler_config.json}; a missing or malformed file, or a value of the wrong type or range, is bad input naming the file. */
  public static SchedulerConfig read(Path file) {
    if (!Files.isRegularFile(file)) {
      throw new KilnException.BadInput("missing scheduler config " + file);
    }
    return fromJson(JsonConfig.read(file, false).node(), file.toString());
  }

  static SchedulerConfig fromJson(JsonNode json, String source) {
    JsonConfig config = JsonConfig.of(json, "scheduler config " + source);
    if (json.hasNonNull("trained_betas")) {
      throw new KilnException.Unsupported("scheduler config " + source + " uses trained_betas, which Kiln does not support");
    }
    // Betas are probabilities of the forward process: 0 < beta < 1, and a schedule that rises (or stays flat).
    double betaStart = config.number("beta_start", 0.0001, Double.MIN_VALUE, 0.999999);
    double betaEnd = config.number("beta_end", 0.02, Double.MIN_VALUE, 0.999999);
    if (betaStart > betaEnd) {
      throw new KilnException.BadInput("scheduler config " + source + ": beta_start " + betaStart + " is above beta_end " + betaEnd
          + " (betas must rise over the schedule)");
    }
    int trainTimesteps = config.integer("num_train_timesteps", 1000, 2, MAX_TRAIN_TIMESTEPS);
    return new SchedulerConfig(
        betaStart,
        betaEnd,
        config.text("beta_schedule", "linear").toLowerCase(Locale.ROOT),
        trainTimesteps,
        config.text("prediction_type", "epsilon"),
        config.text("timestep_spacing", "leading"),
        config.integer("steps_offset", 0, 0, trainTimesteps - 1),
        config.bool("clip_sample", false),
        config.number("clip_sample_range", 1.0, Double.MIN_VALUE, 1e6),
        config.bool("set_alpha_to_one", true),
        config.bool("use_karras_sigmas", false),
        config.integer("original_inference_steps", 50, 1, trainTimesteps),
        config.number("timestep_scaling", 10.0, Double.MIN_VALUE, 1e6),
        // Kiln's pndm is PLMS, PNDM as Stable Diffusion ships it; only a config that asks for the Runge-Kutta warm-up is refused.
        config.bool("skip_prk_steps", true),
        config.integer("solver_order", 2, 1, 3),
        config.text("solver_type", "bh2"));
  }
}
