package dev.kiln.runner.pipeline;

import dev.kiln.runner.image.RgbImage;
import dev.kiln.runner.scheduler.SchedulerKind;

/**
 * What to generate. Null fields take the pipeline's defaults (size from the UNet config, scheduler from the
 * scheduler config, its usual step count). {@code clipSkip} follows diffusers: the number of final CLIP
 * layers skipped (0 = none; Automatic1111's "Clip skip: 2" is 1 here).
 */
public record GenerationRequest(
    String prompt,
    String negativePrompt,
    Integer steps,
    double guidance,
    SchedulerKind scheduler,
    long seed,
    Integer width,
    Integer height,
    int batch,
    RgbImage initImage,
    double strength,
    int clipSkip) {

  public static GenerationRequest of(String prompt, long seed) {
    return new GenerationRequest(prompt, "", null, 7.5, null, seed, null, null, 1, null, 0.8, 0);
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
