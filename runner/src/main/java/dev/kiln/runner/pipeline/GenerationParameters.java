package dev.kiln.runner.pipeline;

import dev.kiln.runner.scheduler.SchedulerKind;
import java.util.Locale;

/**
 * The "parameters" text Automatic1111 writes into its PNGs, which image browsers and A1111's "PNG Info" tab
 * read back: prompt, "Negative prompt: ...", then "Key: value" pairs on one line.
 */
final class GenerationParameters {
  private GenerationParameters() {}

  static String samplerName(SchedulerKind kind) {
    return switch (kind) {
      case DDIM -> "DDIM";
      case EULER -> "Euler";
      case EULER_ANCESTRAL -> "Euler a";
      case LMS -> "LMS";
      case DPMPP_2M -> "DPM++ 2M";
      case DPMPP_2M_KARRAS -> "DPM++ 2M Karras";
      case LCM -> "LCM";
      case PNDM -> "PLMS";
      case UNIPC -> "UniPC";
    };
  }

  static String format(GenerationRequest request, SchedulerKind scheduler, int steps, double guidance, int width, int height, String model,
      int batch, int position, java.util.List<String> controlNets) {
    StringBuilder text = new StringBuilder(request.prompt());
    if (request.negativePrompt() != null && !request.negativePrompt().isEmpty()) {
      text.append("\nNegative prompt: ").append(request.negativePrompt());
    }
    text.append(String.format(Locale.ROOT, "\nSteps: %d, Sampler: %s, CFG scale: %s, Seed: %d, Size: %dx%d, Model: %s",
        steps, samplerName(scheduler), plain(guidance), request.seed(), width, height, model));
    if (request.initImage() != null) {
      text.append(", Denoising strength: ").append(plain(request.strength()));
    }
    if (request.clipSkip() > 0) {
      // A1111 counts the last layer as 1: skipping one layer is "Clip skip: 2".
      text.append(", Clip skip: ").append(request.clipSkip() + 1);
    }
    for (int index = 0; index < request.controls().size(); index++) {
      // The sd-webui-controlnet extension's entry: a quoted list of its settings (Kiln resizes the image to the output size).
      text.append(", ControlNet ").append(index).append(": \"Model: ").append(controlNets.get(index).replace("\"", "'"))
          .append(", Weight: ").append(plain(request.controls().get(index).scale())).append(", Resize Mode: Just Resize, Guess Mode: ")
          .append(request.guessMode() ? "True" : "False").append('"');
    }
    if (batch > 1) {
      text.append(", Batch size: ").append(batch).append(", Batch pos: ").append(position);
    }
    text.append(", Version: kiln 0.1.0");
    return text.toString();
  }

  private static String plain(double value) {
    return value == Math.rint(value) ? String.valueOf((long) value) : String.valueOf(value);
  }
}
