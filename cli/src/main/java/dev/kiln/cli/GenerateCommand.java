package dev.kiln.cli;

import dev.kiln.common.Json;
import dev.kiln.common.KilnException;
import dev.kiln.common.OutputTarget;
import dev.kiln.common.Printable;
import dev.kiln.common.Progress;
import dev.kiln.runner.InvalidRequest;
import dev.kiln.runner.pipeline.Device;
import dev.kiln.runner.pipeline.GenerationRequest;
import dev.kiln.runner.pipeline.GenerationResult;
import dev.kiln.runner.pipeline.PipelineFolder;
import dev.kiln.runner.pipeline.PngOutput;
import dev.kiln.runner.pipeline.StableDiffusionPipeline;
import dev.kiln.runner.pipeline.StepListener;
import dev.kiln.runner.scheduler.SchedulerKind;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** {@code kiln generate}: prompt to PNG on ONNX Runtime for any SD 1.x/2.x/Turbo/SDXL ONNX pipeline folder. */
@Command(name = "generate", mixinStandardHelpOptions = true,
    description = {"Generate images from a prompt with an ONNX Stable Diffusion pipeline folder (diffusers/Optimum layout).",
        "On a terminal, stderr shows a progress bar per step. With --json: outputs, pipeline, device, scheduler, steps, guidance, "
            + "seed, notes, width, height, timings and control (images: image, scale, controlnet; guess_mode)."})
public final class GenerateCommand implements Callable<Integer> {
  @Spec CommandSpec spec;

  @Parameters(index = "0", paramLabel = "PIPELINE_DIR", description = "Pipeline folder (model_index.json, unet/, vae_decoder/, ...).")
  Path pipeline;

  @Mixin GenerationOptions generation;

  @Mixin DeviceOptions deviceOptions;

  @Option(names = {"-o", "--output"}, defaultValue = "out.png", description = "Output PNG (a batch writes NAME-0.png, NAME-1.png, ...); an existing file is replaced only if "
      + "Kiln wrote it, or with --overwrite.")
  Path output;

  @Mixin JsonOption json;

  /** Image formats the output name could promise but a PNG writer cannot keep. */
  private static final java.util.Set<String> OTHER_IMAGE_FORMATS = java.util.Set.of("jpg", "jpeg", "webp", "gif", "bmp", "tif", "tiff", "avif");

  @Option(names = "--overwrite", description = "Replace a file at -o that Kiln did not write (default: only a PNG "
      + "Kiln wrote, marked by its 'Software: Kiln' text chunk, is replaced).")
  boolean overwrite;

  @Override
  public Integer call() {
    try {
      return generate();
    } catch (InvalidRequest e) {
      throw new KilnException.BadInput(GenerationOptions.FLAGS.getOrDefault(e.field(), e.field()) + " " + e.problem(), e);
    }
  }

  private Integer generate() {
    PrintWriter out = spec.commandLine().getOut();
    PrintWriter err = spec.commandLine().getErr();
    SchedulerKind kind = generation.schedulerKind();
    Device requested = deviceOptions.device();
    String fileName = output.getFileName() == null ? "" : output.getFileName().toString();
    String extension = fileName.contains(".") ? fileName.substring(fileName.lastIndexOf('.') + 1).toLowerCase(Locale.ROOT) : "";
    GenerationRequest request = generation.request(generation.actualSeed(), spec);
    if (OTHER_IMAGE_FORMATS.contains(extension)) {
      throw new KilnException.BadInput("-o " + output + ": kiln generate writes PNG images; name the output .png");
    }
    TorchScriptInput.refuse(pipeline);
    // The output rules are checked before the minutes of generation, not after.
    List<Path> inputs = generation.inputs(pipeline);
    for (OutputTarget target : PngOutput.targets(output, request.batch(), overwrite, inputs)) {
      target.check();
    }
    request = generation.withImages(request);
    PipelineFolder folder = PipelineFolder.open(pipeline);
    long start = System.nanoTime();
    try (StableDiffusionPipeline runner = StableDiffusionPipeline.open(folder, requested, deviceOptions.threads(), line -> {
      err.println(Printable.line(line));
      err.flush();
    }, generation.controlNets)) {
      SchedulerKind used = kind != null ? kind : folder.defaultScheduler();
      int total = used.evaluations(generation.steps != null ? generation.steps : used.usualSteps());
      GenerationResult result;
      try (Progress progress = Progress.start("generating", total, "steps", json.enabled())) {
        result = runner.generate(request, new StepListener() {
          @Override
          public void stepDone(int step, int count) {
            progress.step();
          }
        });
      }
      for (String note : result.notes()) {
        err.println("kiln: note: " + Printable.line(note));
      }
      err.flush();
      long pngStart = System.nanoTime();
      List<Path> written = PngOutput.write(result, output, overwrite, inputs);
      result.timings().add("png", System.nanoTime() - pngStart);
      double totalMs = (System.nanoTime() - start) / 1e6;
      if (json.enabled()) {
        Map<String, Object> report = report(result, runner, written, totalMs);
        report.put("control", generation.controlReport(runner.controlNets()));
        out.println(Json.write(report));
      } else {
        out.println(summary(result, runner, written, totalMs));
        for (int index = 0; index < request.controls().size(); index++) {
          out.println("control: " + Printable.line(generation.controlImages.get(index).toString()) + " x " + generation.scale(index) + " -> "
              + Printable.line(runner.controlNets().get(index).toString()) + (generation.controlGuessMode ? " (guess mode)" : ""));
        }
      }
      out.flush();
    }
    return 0;
  }

  static Map<String, Object> report(GenerationResult result, StableDiffusionPipeline runner, List<Path> written, double totalMs) {
    Map<String, Object> json = new LinkedHashMap<>();
    json.put("outputs", written.stream().map(path -> path.toAbsolutePath().toString()).toList());
    json.put("pipeline", runner.folder().root().toString());
    json.put("device", runner.device().cliName());
    json.put("scheduler", result.scheduler().cliName());
    json.put("steps", result.steps());
    json.put("guidance", result.guidance());
    json.put("seed", result.seed());
    json.put("notes", result.notes());
    json.put("width", result.width());
    json.put("height", result.height());
    Map<String, Object> timings = new LinkedHashMap<>(runner.loadTimings().toJson());
    timings.putAll(result.timings().toJson());
    timings.put("total_ms", Math.round(totalMs * 100) / 100.0);
    json.put("timings", timings);
    return json;
  }

  static String summary(GenerationResult result, StableDiffusionPipeline runner, List<Path> written, double totalMs) {
    StringBuilder text = new StringBuilder();
    for (Path path : written) {
      text.append("wrote ").append(path.toAbsolutePath()).append('\n');
    }
    text.append(String.format(Locale.ROOT, "%dx%d, %s, %d steps, guidance %s, seed %d, %s%n", result.width(), result.height(),
        result.scheduler().cliName(), result.steps(), result.guidance(), result.seed(), runner.device().cliName()));
    text.append("timings: ").append(timings(result, runner, totalMs));
    return text.toString();
  }

  /** One line of per-stage timings (load, tokenize, text encoder, per UNet step, VAE, PNG, total). */
  static String timings(GenerationResult result, StableDiffusionPipeline runner, double totalMs) {
    var stages = result.timings();
    int unetSteps = stages.stages().getOrDefault("unet_step", List.of()).size();
    double load = runner.loadTimings().stages().keySet().stream().mapToDouble(runner.loadTimings()::total).sum();
    return String.format(Locale.ROOT,
        "load %.0f ms, tokenize %.1f ms, text encoder %.1f ms, unet %d x %.1f ms, vae decoder %.1f ms, png %.1f ms, total %.0f ms",
        load, stages.total("tokenize"), stages.total("text_encoder") + stages.total("text_encoder_2"), unetSteps,
        unetSteps == 0 ? 0 : stages.total("unet_step") / unetSteps, stages.total("vae_decoder"), stages.total("png"), totalMs);
  }
}
