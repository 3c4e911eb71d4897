package dev.kiln.cli;

import dev.kiln.common.Json;
import dev.kiln.common.KilnException;
import dev.kiln.common.OutputTarget;
import dev.kiln.common.Printable;
import dev.kiln.common.Progress;
import dev.kiln.optimizer.precision.CalibrationSets;
import dev.kiln.optimizer.precision.PipelineCalibration;
import dev.kiln.runner.scheduler.SchedulerKind;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Help.Visibility;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code kiln calibrate PIPELINE -o DIR}: the calibration inputs {@code kiln optimize --precision mixed} records from
 * the runner, written for inspection and reuse ({@code --calibration DIR}).
 */
@Command(name = "calibrate", mixinStandardHelpOptions = true,
    description = {"Record real calibration inputs from a float32 pipeline folder by running Kiln's runner on the CPU: "
        + "prompts through the text encoder(s), the UNet's inputs at the first, middle and last denoising step (guidance "
        + "batch as the runner feeds it), the final latents for the VAE decoder and the decoded images for the VAE "
        + "encoder (img2img path); seeded, one ORT thread, byte-identical on rerun.",
        "Writes DIR/<component>/test_data_set_N/input_K.pb (ONNX test-data layout; even N calibrate, odd N are held out "
            + "for verification), which `kiln optimize --precision mixed --calibration DIR` reads. "
            + "With --json: {output, sizes, steps, scheduler, seed, smallestSeeds, batch, prompts, components: {name: {heldIn, heldOut, "
            + "inputs}}}."})
public final class CalibrateCommand implements Callable<Integer> {
  @Spec CommandSpec spec;

  @Parameters(index = "0", paramLabel = "PIPELINE", description = "A float32 pipeline folder (model_index.json).")
  Path input;

  @Option(names = {"-o", "--output"}, required = true, description = "Output folder (a link to a hidden sibling "
      + ".NAME.kiln-*, swapped atomically); never the input or the working folder.")
  Path output;

  @Option(names = "--prompt", showDefaultValue = Visibility.NEVER, description = "A prompt (repeatable, at least two: "
      + "odd positions are held out). Default: Kiln's four fixed prompts (short and long, two with negative prompts).")
  List<String> prompts = new ArrayList<>();

  @Option(names = "--negative-prompt", showDefaultValue = Visibility.NEVER, description = "The negative prompt of the "
      + "--prompt at the same position (repeatable; missing ones are empty).")
  List<String> negatives = new ArrayList<>();

  @Option(names = "--size", showDefaultValue = Visibility.NEVER, description = "WIDTHxHEIGHT in pixels (repeatable). "
      + "Default: the pipeline's size, capped at 32x32 latents (256x256 for SD 1.5), a non-square one a quarter lower, "
      + "and the smallest, twice the size multiple (128x128 for SD 1.5), where float16's error is largest.")
  List<String> sizes = new ArrayList<>();

  @Option(names = "--smallest-seeds", defaultValue = "" + PipelineCalibration.DEFAULT_SMALLEST_SEEDS, description = "Noise "
      + "seeds per prompt at the smallest of two or more sizes (float16's error there varies most from noise to noise). "
      + "Default: ${DEFAULT-VALUE}.")
  int smallestSeeds;

  @Option(names = "--steps", defaultValue = "10", description = "Denoising steps per generation (at least 3). Default: ${DEFAULT-VALUE}.")
  int steps;

  @Option(names = "--seed", defaultValue = "0", description = "Prompt i runs with seed SEED + i. Default: ${DEFAULT-VALUE}.")
  long seed;

  @Option(names = "--batch", defaultValue = "1", description = "Images per prompt. Default: ${DEFAULT-VALUE}.")
  int batch;

  @Option(names = "--scheduler", description = "Scheduler (ddim, pndm, euler, ...). Default: the pipeline's.")
  String scheduler;

  @Option(names = "--img2img", negatable = true, defaultValue = "true", fallbackValue = "true", description = "Record the "
      + "VAE encoder's input through the img2img path (where the pipeline has an encoder). Default: ${DEFAULT-VALUE}.")
  boolean imageToImage = true;

  @Option(names = "--overwrite", description = "Replace what is at -o even when Kiln did not write it (default: only a "
      + "previous Kiln output or an empty folder is replaced; an input never is).")
  boolean overwrite;

  @Mixin JsonOption json;

  @Override
  public Integer call() {
    if (!Files.isRegularFile(input.resolve("model_index.json"))) {
      throw new KilnException.BadInput(input + ": not a pipeline folder (model_index.json missing)");
    }
    OutputTarget target = OutputTarget.folder(output, "calibrate").inputs(input).overwrite(overwrite);
    target.check();
    PipelineCalibration.Options options = PipelineCalibration.Options.defaults().withSteps(steps).withSeed(seed).withBatch(batch)
        .withImageToImage(imageToImage).withSizes(parseSizes()).withSmallestSeeds(smallestSeeds);
    if (!prompts.isEmpty()) {
      if (negatives.size() > prompts.size()) {
        throw new KilnException.BadInput("--negative-prompt: " + negatives.size() + " given for " + prompts.size() + " --prompt");
      }
      List<PipelineCalibration.Prompt> list = new ArrayList<>();
      for (int index = 0; index < prompts.size(); index++) {
        list.add(new PipelineCalibration.Prompt(prompts.get(index), index < negatives.size() ? negatives.get(index) : ""));
      }
      options = options.withPrompts(list);
    } else if (!negatives.isEmpty()) {
      throw new KilnException.BadInput("--negative-prompt needs --prompt (the default prompts bring their own)");
    }
    if (scheduler != null) {
      options = options.withScheduler(SchedulerKind.parse(scheduler));
    }
    PipelineCalibration.Capture capture;
    int generations = options.prompts().size() * Math.max(1, options.sizes().size());
    try (Progress progress = Progress.start("calibrate", generations, "generations", json.enabled())) {
      // The default sizes are known once the pipeline is open: the first report sets the total.
      capture = PipelineCalibration.capture(input, options, (done, total) -> {
        if (done == 1) {
          progress.restart("calibrate", total);
        }
        progress.step();
      });
    }
    PipelineCalibration.write(capture, target);
    PrintWriter out = spec.commandLine().getOut();
    if (json.enabled()) {
      Map<String, Object> document = new LinkedHashMap<>();
      document.put("output", output.toString());
      document.put("sizes", capture.sizes().stream().map(PipelineCalibration.Size::toString).toList());
      document.put("steps", capture.steps());
      document.put("scheduler", capture.scheduler());
      document.put("seed", capture.seed());
      document.put("smallestSeeds", capture.smallestSeeds());
      document.put("batch", capture.batch());
      document.put("prompts", capture.prompts());
      Map<String, Object> components = new LinkedHashMap<>();
      capture.components().forEach((name, sets) -> {
        Map<String, Object> entry = new LinkedHashMap<>();
        entry.put("heldIn", sets.heldIn().size());
        entry.put("heldOut", sets.heldOut().size());
        entry.put("inputs", inputs(sets));
        components.put(name, entry);
      });
      document.put("components", components);
      out.println(Json.write(document));
    } else {
      out.println(Printable.line(capture.describe()));
      capture.components().forEach((name, sets) -> out.println(String.format(Locale.ROOT, "%s: %d held-in + %d held-out sets -> %s",
          name, sets.heldIn().size(), sets.heldOut().size(), Printable.line(output.resolve(name).toString()))));
    }
    out.flush();
    return Main.OK;
  }

  /** Every input's distinct shapes over the component's sets. */
  private static Map<String, List<String>> inputs(PipelineCalibration.Sets sets) {
    Map<String, List<String>> shapes = new LinkedHashMap<>();
    for (CalibrationSets.Set set : sets.interleaved()) {
      set.feeds().forEach((name, feed) -> {
        List<String> seen = shapes.computeIfAbsent(name, key -> new ArrayList<>());
        String shape = Arrays.toString(feed.shape());
        if (!seen.contains(shape)) {
          seen.add(shape);
        }
      });
    }
    return shapes;
  }

  private List<PipelineCalibration.Size> parseSizes() {
    List<PipelineCalibration.Size> parsed = new ArrayList<>();
    for (String size : sizes) {
      String[] parts = size.split("x", -1);
      try {
        if (parts.length != 2) {
          throw new NumberFormatException();
        }
        int width = Integer.parseInt(parts[0]);
        int height = Integer.parseInt(parts[1]);
        if (width < 1 || height < 1) {
          throw new NumberFormatException();
        }
        parsed.add(new PipelineCalibration.Size(width, height));
      } catch (NumberFormatException e) {
        throw new KilnException.BadInput("--size " + Printable.line(size) + ": expected WIDTHxHEIGHT in pixels, e.g. 512x384");
      }
    }
    return parsed;
  }
}
