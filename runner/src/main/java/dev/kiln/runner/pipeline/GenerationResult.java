package dev.kiln.runner.pipeline;

import dev.kiln.runner.image.RgbImage;
import dev.kiln.runner.scheduler.SchedulerKind;
import java.util.List;

/**
 * The images of one generation, the settings actually used, the final latents, every stage's timing and the
 * notes a user should read (a truncated prompt and what was dropped, an ignored negative prompt, ...).
 */
public record GenerationResult(
    List<RgbImage> images,
    List<String> parameters,
    Tensor finalLatents,
    StageTimings timings,
    SchedulerKind scheduler,
    int steps,
    int width,
    int height,
    long seed,
    double guidance,
    List<String> notes) {}
