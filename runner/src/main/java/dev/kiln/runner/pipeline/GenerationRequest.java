package dev.kiln.runner.pipeline;

import dev.kiln.runner.InvalidRequest;
import dev.kiln.runner.image.RgbImage;
import dev.kiln.runner.scheduler.SchedulerKind;

/**
 * What to generate. Null fields take the pipeline's defaults (size from the UNet config, scheduler from the
 * scheduler config, its usual step count, guidance {@link #DEFAULT_GUIDANCE} or, for LCM, what LCM models
 * need). {@code clipSkip} follows diffusers: the number of final CLIP layers skipped (0 = none;
 * Automatic1111's "Clip skip: 2" is 1 here). {@code strength} applies only with an {@code initImage}.
 *
 * <p>{@link #validate} checks what needs no pipeline; the pipeline checks the rest (sizes, steps, clip skip
 * against the model). Both refuse with {@link InvalidRequest}, naming the field as spelled here.
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
    int clipSkip) {

  /** Classifier-free guidance unless the scheduler needs another (LCM). */
  public static final double DEFAULT_GUIDANCE = 7.5;
  /** Guidance above this is refused: far past any useful scale (Automatic1111's slider ends at 30), it only saturates. */
  public static final double MAX_GUIDANCE = 100;

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
    return this;
  }

  public GenerationRequest withSteps(int value) {
    return new GenerationRequest(prompt, negativePrompt, value, guidance, scheduler, seed, width, height, batch, initImage, strength, clipSkip);
  }

  public GenerationRequest withGuidance(double value) {
    return new GenerationRequest(prompt, negativePrompt, steps, value, scheduler, seed, width, height, batch, initImage, strength, clipSkip);
  }

  public GenerationRequest withScheduler(SchedulerKind value) {
    return new GenerationRequest(prompt, negativePrompt, steps, guidance, value, seed, width, height, batch, initImage, strength, clipSkip);
  }

  public GenerationRequest withNegativePrompt(String value) {
    return new GenerationRequest(prompt, value, steps, guidance, scheduler, seed, width, height, batch, initImage, strength, clipSkip);
  }

  public GenerationRequest withSize(Integer newWidth, Integer newHeight) {
    return new GenerationRequest(prompt, negativePrompt, steps, guidance, scheduler, seed, newWidth, newHeight, batch, initImage, strength, clipSkip);
  }

  public GenerationRequest withBatch(int value) {
    return new GenerationRequest(prompt, negativePrompt, steps, guidance, scheduler, seed, width, height, value, initImage, strength, clipSkip);
  }

  public GenerationRequest withInitImage(RgbImage image, double value) {
    return new GenerationRequest(prompt, negativePrompt, steps, guidance, scheduler, seed, width, height, batch, image, value, clipSkip);
  }

  public GenerationRequest withClipSkip(int value) {
    return new GenerationRequest(prompt, negativePrompt, steps, guidance, scheduler, seed, width, height, batch, initImage, strength, value);
  }

  public GenerationRequest withSeed(long value) {
    return new GenerationRequest(prompt, negativePrompt, steps, guidance, scheduler, value, width, height, batch, initImage, strength, clipSkip);
  }
}
