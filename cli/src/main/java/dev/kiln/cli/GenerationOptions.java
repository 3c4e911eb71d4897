package dev.kiln.cli;

import dev.kiln.common.KilnException;
import dev.kiln.runner.image.RgbImage;
import dev.kiln.runner.pipeline.ControlImage;
import dev.kiln.runner.pipeline.GenerationRequest;
import dev.kiln.runner.scheduler.SchedulerKind;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import picocli.CommandLine.Help.Visibility;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;

/**
 * What to generate, shared by {@code kiln generate} and {@code kiln run} (a picocli mixin): prompt, sampling,
 * size, img2img and ControlNet options, turned into one {@link GenerationRequest}. Fields keep their defaults
 * when set by code rather than parsed ({@code kiln demo} drives {@code kiln run} that way).
 */
public final class GenerationOptions {
  @Option(names = "--prompt", required = true, description = "What to draw.")
  String prompt;

  @Option(names = "--negative-prompt", defaultValue = "", showDefaultValue = Visibility.NEVER, description = "What to steer away from. Default: nothing.")
  String negativePrompt = "";

  @Option(names = "--steps", description = "Denoising steps. Default: the scheduler's usual count.")
  Integer steps;

  @Option(names = "--guidance", description = "Classifier-free guidance scale, 0 to 100; <= 1 runs no unconditional branch (Turbo: 0)"
      + ". Default: 7.5 (lcm: 1, or 8.5 into an LCM UNet's guidance embedding).")
  Double guidance;

  @Option(names = "--scheduler", description = "Default: the pipeline's. One of ddim, euler, euler-a, lms, dpm++2m, dpm++2m-karras, lcm, pndm, unipc.")
  String scheduler;

  @Option(names = "--seed", description = "Seed of torch's CPU generator. Default: random (printed).")
  Long seed;

  @Option(names = "--width", description = "Width in pixels, a multiple of the VAE factor. Default: the init or control image's, else the UNet's sample size.")
  Integer width;

  @Option(names = "--height", description = "Height in pixels, a multiple of the VAE factor. Default: the init or control image's, else the UNet's sample size.")
  Integer height;

  @Option(names = "--batch", defaultValue = "1", description = "Images per prompt.")
  int batch = 1;

  @Option(names = "--init-image", description = "img2img: start from this image (needs vae_encoder/).")
  Path initImage;

  @Option(names = "--strength", defaultValue = "0.8", description = "img2img: how much of the schedule to run, (0, 1].")
  double strength = 0.8;

  @Option(names = "--clip-skip", defaultValue = "0", description = "Skip the last N CLIP layers (diffusers count; A1111's 'Clip skip 2' is 1).")
  int clipSkip;

  @Option(names = "--control-image", showDefaultValue = Visibility.NEVER, paramLabel = "FILE", description = "ControlNet: the control image (PNG, JPEG or BMP; resized bilinearly to the "
      + "output size, fed as RGB in [0, 1]). Repeat it for several ControlNets: the first goes to the pipeline's controlnet/, the next to "
      + "each --controlnet in order; their residuals are summed. Default: none (a ControlNet pipeline then runs without control).")
  List<Path> controlImages = new ArrayList<>();

  @Option(names = "--control-scale", showDefaultValue = Visibility.NEVER, paramLabel = "S", description = "ControlNet: the scale of its residuals, 0 to 10; one per --control-image, "
      + "or one for all. Default: 1.")
  List<Double> controlScales = new ArrayList<>();

  @Option(names = "--control-guess-mode", description = "ControlNet guess mode (diffusers): the ControlNet sees only the prompt's half of "
      + "the guidance batch, its residuals scaled from 0.1 (shallow) to 1 (mid block). Default: off.")
  boolean controlGuessMode;

  @Option(names = "--controlnet", showDefaultValue = Visibility.NEVER, paramLabel = "DIR", description = "An extra ControlNet (a folder holding model.onnx and config.json) after the "
      + "pipeline's own controlnet/; repeatable. Default: none.")
  List<Path> controlNets = new ArrayList<>();

  /** The option that sets each GenerationRequest field, for refusals the runner words with field names. */
  static final Map<String, String> FLAGS = Map.ofEntries(
      Map.entry("prompt", "--prompt"), Map.entry("negativePrompt", "--negative-prompt"), Map.entry("steps", "--steps"),
      Map.entry("guidance", "--guidance"), Map.entry("scheduler", "--scheduler"), Map.entry("seed", "--seed"),
      Map.entry("width", "--width"), Map.entry("height", "--height"), Map.entry("batch", "--batch"),
      Map.entry("initImage", "--init-image"), Map.entry("strength", "--strength"), Map.entry("clipSkip", "--clip-skip"),
      Map.entry("controls", "--control-image"), Map.entry("controlScale", "--control-scale"),
      Map.entry("guessMode", "--control-guess-mode"));

  SchedulerKind schedulerKind() {
    return scheduler == null ? null : SchedulerKind.parse(scheduler);
  }

  /** The seed to use: --seed, or a random 32-bit one (printed with the result, so the image can be made again). */
  long actualSeed() {
    return seed != null ? seed : new SecureRandom().nextLong() & 0xffffffffL;
  }

  /**
   * The request without its images, validated: everything that needs no file read, so a bad flag is refused before
   * any file is touched. {@code spec} (null when the options were set by code) tells whether --strength was given.
   */
  GenerationRequest request(long actualSeed, CommandSpec spec) {
    if (initImage == null && spec != null && spec.commandLine().getParseResult().hasMatchedOption("--strength")) {
      throw new KilnException.BadInput("--strength applies only to img2img: give --init-image too, or drop --strength");
    }
    if (controlScales.size() > Math.max(1, controlImages.size())) {
      throw new KilnException.BadInput("--control-scale is given " + controlScales.size() + " times for " + controlImages.size()
          + " --control-image" + (controlImages.size() == 1 ? "" : "s") + ": give one scale per control image, or one for all");
    }
    if (controlScales.size() > 1 && controlScales.size() != controlImages.size()) {
      throw new KilnException.BadInput("--control-scale is given " + controlScales.size() + " times for " + controlImages.size()
          + " --control-images: give one scale per control image, or one for all");
    }
    if (controlImages.isEmpty() && !controlScales.isEmpty()) {
      throw new KilnException.BadInput("--control-scale applies only with --control-image: give the control image too, or drop it");
    }
    if (controlImages.isEmpty() && !controlNets.isEmpty()) {
      throw new KilnException.BadInput("--controlnet " + controlNets.get(0) + " needs its --control-image: give one per ControlNet, or drop it");
    }
    for (Path net : controlNets) {
      // Checked before the pipeline's minutes of loading; the runner checks the model itself when it opens it.
      if (!Files.isRegularFile(Files.isDirectory(net) ? net.resolve("model.onnx") : net)) {
        throw new KilnException.BadInput("--controlnet " + net + " has no model.onnx (expected a folder holding model.onnx and config.json)");
      }
    }
    for (int index = 0; index < controlImages.size(); index++) {
      GenerationRequest.checkControlScale(scale(index), controlImages.get(index).toString());
    }
    if (controlGuessMode && controlImages.isEmpty()) {
      throw new KilnException.BadInput("--control-guess-mode applies only with --control-image: give the control image too, or drop it");
    }
    return new GenerationRequest(prompt, negativePrompt, steps, guidance, schedulerKind(), actualSeed, width, height, batch, null, strength,
        clipSkip).validate();
  }

  /** The request with its init and control images read (each unreadable one refused naming its file). */
  GenerationRequest withImages(GenerationRequest request) {
    if (initImage != null) {
      request = request.withInitImage(RgbImage.read(initImage), strength);
    }
    List<ControlImage> controls = new ArrayList<>();
    for (int index = 0; index < controlImages.size(); index++) {
      Path file = controlImages.get(index);
      controls.add(new ControlImage(RgbImage.read(file, "control image"), scale(index), file.toString()));
    }
    return request.withControls(controls, controlGuessMode).validate();
  }

  /** The scale of control image {@code index}: its own, the one given for all, or 1. */
  double scale(int index) {
    return controlScales.isEmpty() ? 1.0 : controlScales.size() == 1 ? controlScales.get(0) : controlScales.get(index);
  }

  /** The files the outputs must never replace: the pipeline, the init image, the control images and the extra ControlNets. */
  List<Path> inputs(Path source) {
    List<Path> inputs = new ArrayList<>(List.of(source));
    if (initImage != null) {
      inputs.add(initImage);
    }
    inputs.addAll(controlImages);
    inputs.addAll(controlNets);
    return List.copyOf(inputs);
  }

  /** The control inputs used, for --json: each image with its scale and ControlNet, and guess mode. */
  Map<String, Object> controlReport(List<Path> nets) {
    Map<String, Object> report = new LinkedHashMap<>();
    List<Map<String, Object>> controls = new ArrayList<>();
    for (int index = 0; index < controlImages.size(); index++) {
      Map<String, Object> control = new LinkedHashMap<>();
      control.put("image", controlImages.get(index).toAbsolutePath().toString());
      control.put("scale", scale(index));
      control.put("controlnet", index < nets.size() ? nets.get(index).toAbsolutePath().toString() : null);
      controls.add(control);
    }
    report.put("images", controls);
    report.put("guess_mode", controlGuessMode);
    return report;
  }
}
