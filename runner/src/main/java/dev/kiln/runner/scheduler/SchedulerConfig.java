package dev.kiln.runner.scheduler;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.common.KilnException;
import java.io.IOException;
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
    double timestepScaling) {

  /** SD 1.5's published scheduler settings (PNDM/DDIM config of runwayml/stable-diffusion-v1-5). */
  public static SchedulerConfig stableDiffusion15() {
    return new SchedulerConfig(0.00085, 0.012, "scaled_linear", 1000, "epsilon", "leading", 1, false, 1.0, false, false, 50, 10.0);
  }

  /** Diffusers' models train on 1000 timesteps; the schedule holds three doubles per timestep. */
  static final int MAX_TRAIN_TIMESTEPS = 100_000;

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
  }

  public boolean vPrediction() {
    return predictionType.equals("v_prediction");
  }

  public SchedulerConfig withKarrasSigmas(boolean karras) {
    return new SchedulerConfig(betaStart, betaEnd, betaSchedule, trainTimesteps, predictionType, timestepSpacing, stepsOffset,
        clipSample, clipSampleRange, setAlphaToOne, karras, originalInferenceSteps, timestepScaling);
  }

  public SchedulerConfig withSpacing(String spacing) {
    return new SchedulerConfig(betaStart, betaEnd, betaSchedule, trainTimesteps, predictionType, spacing, stepsOffset,
        clipSample, clipSampleRange, setAlphaToOne, useKarrasSigmas, originalInferenceSteps, timestepScaling);
  }

  /** Reads {@code scheduler_config.json}; a missing or malformed file is bad input naming the file. */
  public static SchedulerConfig read(Path file) {
    if (!Files.isRegularFile(file)) {
      throw new KilnException.BadInput("missing scheduler config " + file);
    }
    try {
      return fromJson(new ObjectMapper().readTree(file.toFile()), file.toString());
    } catch (IOException e) {
      throw new KilnException.BadInput("cannot read scheduler config " + file + ": " + e.getMessage(), e);
    }
  }

  static SchedulerConfig fromJson(JsonNode json, String source) {
    if (json == null || !json.isObject()) {
      throw new KilnException.BadInput("scheduler config " + source + " is not a JSON object");
    }
    if (json.hasNonNull("trained_betas")) {
      throw new KilnException.Unsupported("scheduler config " + source + " uses trained_betas, which Kiln does not support");
    }
    return new SchedulerConfig(
        json.path("beta_start").asDouble(0.0001),
        json.path("beta_end").asDouble(0.02),
        json.path("beta_schedule").asText("linear").toLowerCase(Locale.ROOT),
        json.path("num_train_timesteps").asInt(1000),
        json.path("prediction_type").asText("epsilon"),
        json.path("timestep_spacing").asText("leading"),
        json.path("steps_offset").asInt(0),
        json.path("clip_sample").asBoolean(false),
        json.path("clip_sample_range").asDouble(1.0),
        json.path("set_alpha_to_one").asBoolean(true),
        json.path("use_karras_sigmas").asBoolean(false),
        json.path("original_inference_steps").asInt(50),
        json.path("timestep_scaling").asDouble(10.0));
  }
}
