package dev.kiln.runner.pipeline;

import dev.kiln.runner.InvalidRequest;
import dev.kiln.runner.image.RgbImage;
import dev.kiln.runner.scheduler.SchedulerKind;
import java.util.List;

/**
 * What to generate. Null fields take the pipeline's defaults (size from the UNet config, scheduler from the
 * scheduler config, its usual step count, guidance {@link #DEFAULT_GUIDANCE} or, for LCM, what LCM models
 * need). {@code clipSkip} follows diffusers: the number of final CLIP layers skipped (0 = none;
 * Automatic1111's "Clip skip: 2" is 1 here). {@code strength} applies only with an {@code initImage}.
 *
 * <p>{@link #validate} checks what needs no pipeline; the pipeline checks the rest (sizes, steps, clip skip
 * against the model). Both refuse with {@link InvalidRequest}, naming the field as spelled here.
 *
 * <p>{@code controls} are the ControlNet conditions, one per ControlNet of the pipeline in order (empty: none, a
 * ControlNet pipeline then runs its UNet with zero residuals); {@code guessMode} is diffusers' guess mode.
 */
public record GenerationRequest(
    String prompt,
    String negativePrompt,
    Integer steps,
    Double guidance,
    SchedulerKind scheduler,
    long seed,
    Integer width,
    Integer height,
    int batch,
    RgbImage initImage,
    double strength,
    int clipSkip,
    List<ControlImage> controls,
    boolean guessMode) {

  /** Classifier-free guidance unless the scheduler needs another (LCM). */
  public static final double DEFAULT_GUIDANCE = 7.5;
  /** Guidance above this is refused: far past any useful scale (Automatic1111's slider ends at 30), it only saturates. */
  public static final double MAX_GUIDANCE = 100;

  /** A control scale above this is refused: diffusers' examples use 0.5 to 2; far larger only saturates the UNet. */
  public static final double MAX_CONTROL_SCALE = 10;

  public GenerationRequest {
    controls = controls == null ? List.of() : List.copyOf(controls);
  }

  /** A request without ControlNet conditions. */
  public GenerationRequest(String prompt, String negativePrompt, Integer steps, Double guidance, SchedulerKind scheduler, long seed,
      Integer width, Integer height, int batch, RgbImage initImage, double strength, int clipSkip) {
    this(prompt, negativePrompt, steps, guidance, scheduler, seed, width, height, batch, initImage, strength, clipSkip, List.of(), false);
  }

  public static GenerationRequest of(String prompt, long seed) {
    return new GenerationRequest(prompt, "", null, null, null, seed, null, null, 1, null, 0.8, 0);
  }

  /** Checks the fields that need no pipeline; throws {@link InvalidRequest} naming the first bad one. */
  public GenerationRequest validate() {
    if (prompt == null) {
      throw new InvalidRequest("prompt", "is required");
    }
    if (steps != null && steps < 1) {
      throw new InvalidRequest("steps", "must be at least 1, got " + steps);
    }
    if (guidance != null && !(guidance >= 0 && guidance <= MAX_GUIDANCE)) {
      throw new InvalidRequest("guidance", "must be a number from 0 to " + (int) MAX_GUIDANCE + ", got " + guidance);
    }
    if (width != null && width < 1) {
      throw new InvalidRequest("width", "must be positive, got " + width);
    }
    if (height != null && height < 1) {
      throw new InvalidRequest("height", "must be positive, got " + height);
    }
    if (batch < 1) {
      throw new InvalidRequest("batch", "must be at least 1, got " + batch);
    }
    if (initImage != null && !(strength > 0 && strength <= 1)) {
      throw new InvalidRequest("strength", "must be in (0, 1], got " + strength);
    }
    if (clipSkip < 0) {
      throw new InvalidRequest("clipSkip", "must be at least 0, got " + clipSkip);
    }
    for (ControlImage control : controls) {
      checkControlScale(control.scale(), control.source());
    }
    if (guessMode && controls.isEmpty()) {
      throw new InvalidRequest("guessMode", "applies only with a control image: give one too, or drop it");
    }
    return this;
  }

  /** Refuses a control scale that is not a number from 0 to {@link #MAX_CONTROL_SCALE}, naming the control image it is for. */
  public static void checkControlScale(double scale, String source) {
    if (!(scale >= 0 && scale <= MAX_CONTROL_SCALE)) {
      throw new InvalidRequest("controlScale", "must be a number from 0 to " + (int) MAX_CONTROL_SCALE + ", got " + scale + " (for " + source + ")");
    }
  }

  public GenerationRequest withSteps(int value) {
    return new GenerationRequest(prompt, negativePrompt, value, guidance, scheduler, seed, width, height, batch, initImage, strength, clipSkip, controls, guessMode);
  }

  public GenerationRequest withGuidance(double value) {
    return new GenerationRequest(prompt, negativePrompt, steps, value, scheduler, seed, width, height, batch, initImage, strength, clipSkip, controls, guessMode);
  }

  public GenerationRequest withScheduler(SchedulerKind value) {
    return new GenerationRequest(prompt, negativePrompt, steps, guidance, value, seed, width, height, batch, initImage, strength, clipSkip, controls, guessMode);
  }

  public GenerationRequest withNegativePrompt(String value) {
    return new GenerationRequest(prompt, value, steps, guidance, scheduler, seed, width, height, batch, initImage, strength, clipSkip, controls, guessMode);
  }

  public GenerationRequest withSize(Integer newWidth, Integer newHeight) {
    return new GenerationRequest(prompt, negativePrompt, steps, guidance, scheduler, seed, newWidth, newHeight, batch, initImage, strength, clipSkip, controls, guessMode);
  }

  public GenerationRequest withBatch(int value) {
    return new GenerationRequest(prompt, negativePrompt, steps, guidance, scheduler, seed, width, height, value, initImage, strength, clipSkip, controls, guessMode);
  }

  public GenerationRequest withInitImage(RgbImage image, double value) {
    return new GenerationRequest(prompt, negativePrompt, steps, guidance, scheduler, seed, width, height, batch, image, value, clipSkip, controls, guessMode);
  }

  public GenerationRequest withClipSkip(int value) {
    return new GenerationRequest(prompt, negativePrompt, steps, guidance, scheduler, seed, width, height, batch, initImage, strength, value, controls, guessMode);
  }

  /** The ControlNet conditions, one per ControlNet of the pipeline, and whether guess mode runs them. */
  public GenerationRequest withControls(List<ControlImage> value, boolean guess) {
    return new GenerationRequest(prompt, negativePrompt, steps, guidance, scheduler, seed, width, height, batch, initImage, strength, clipSkip,
        value, guess);
  }

  public GenerationRequest withSeed(long value) {
    return new GenerationRequest(prompt, negativePrompt, steps, guidance, scheduler, value, width, height, batch, initImage, strength, clipSkip, controls, guessMode);
  }
}
