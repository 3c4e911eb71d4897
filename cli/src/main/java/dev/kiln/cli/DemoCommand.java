package dev.kiln.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.kiln.common.AtomicFiles;
import dev.kiln.common.Json;
import dev.kiln.common.KilnException;
import dev.kiln.common.OutputTarget;
import dev.kiln.common.Printable;
import dev.kiln.runner.image.PngWriter;
import dev.kiln.runner.image.RgbImage;
import dev.kiln.runner.image.ShapePlacement;
import dev.kiln.runner.pipeline.PngOutput;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code kiln demo}: the first command a new user runs. It is {@code kiln run} on the TorchScript tiny pipeline that
 * ships in the repository — export, optimize, validate, bundle (into the bundle cache), generate — and writes
 * demo.png; every stage is real and the table shows each one's result and time. Then the same for the trained tiny
 * ControlNet pipeline with a control image (a white disc at the top right): it writes demo-controlnet.png and
 * prints how far the generated shape's centroid is from the control's (and from demo.png's, drawn without
 * control), exiting 1 when it misses by more than 8 px. The second demo finds its bundles in the cache
 * ($KILN_CACHE, default ~/.cache/kiln; the key includes Kiln's commit, so a new build bundles anew).
 */
@Command(name = "demo", mixinStandardHelpOptions = true,
    description = {"Generate demo.png from the bundled TorchScript tiny pipeline: \"a red circle on a white background\" "
        + "(kiln run: export, optimize, validate, bundle, generate), then demo-controlnet.png from the tiny ControlNet pipeline "
        + "with a control image (a white disc at (44, 20)), printing how far the shape landed from the control.",
        "Exit 0, or 1 when a stage fails or the ControlNet's shape lands more than 8 px from the control's centroid.",
        "With --json: outputs, prompt, source, bundle, cached, target, stages (name, status, detail, ms) and timings; controlnet: "
            + "the same for the ControlNet run plus control_image and placement (control_centroid, shape_centroid, distance_px, "
            + "within_px, hit, without_control)."})
public final class DemoCommand implements Callable<Integer> {
  static final String PROMPT = "a red circle on a white background";
  static final String PIPELINE = "testdata/pipelines/tiny-sd-torchscript";
  static final String CONTROL_PIPELINE = "testdata/pipelines/tiny-sd-controlnet-torchscript";
  /** The control: a medium disc (radius 15, the size the prompt's circle has) away from where the plain demo draws it. */
  static final double CONTROL_X = 44;
  static final double CONTROL_Y = 20;
  static final double CONTROL_RADIUS = 15;
  /** The fixture's image size (its control images are 64x64). */
  static final int CONTROL_SIZE = 64;
  /** A hit, as the fixture's evaluation counts it. */
  static final double HIT_PX = 8;

  @Spec CommandSpec spec;

  @Option(names = "--pipeline", description = "Pipeline folder (TorchScript or ONNX) to use instead of the bundled " + PIPELINE + ".")
  Path pipeline;

  @Option(names = "--controlnet-pipeline", paramLabel = "DIR", description = "ControlNet pipeline folder (TorchScript or ONNX, "
      + "trained on 64x64 mask control images) instead of the bundled " + CONTROL_PIPELINE + ".")
  Path controlPipeline;

  @Option(names = "--no-controlnet", description = "Skip the ControlNet run.")
  boolean noControlNet;

  @Option(names = {"-o", "--output"}, defaultValue = "demo.png", description = "Output PNG (in the current directory unless a path is given); "
      + "the ControlNet image goes beside it as NAME-controlnet.png.")
  Path output;

  @Option(names = "--seed", defaultValue = "0", description = "Seed of torch's CPU generator.")
  long seed;

  @Mixin JsonOption json;

  @Override
  public Integer call() {
    PrintWriter out = spec.commandLine().getOut();
    PrintWriter err = spec.commandLine().getErr();
    Path controlSource = noControlNet ? null : controlPipeline != null ? controlPipeline : bundledPipeline(CONTROL_PIPELINE);
    if (controlSource != null) {
      // A foreign file where the ControlNet image goes is refused before any work, not after the first run.
      for (OutputTarget png : PngOutput.targets(controlOutput(output), 1, false, List.of(controlSource))) {
        png.check();
      }
    }
    StringWriter plainJson = new StringWriter();
    RunCommand plainRun = run(pipeline != null ? pipeline : bundledPipeline(PIPELINE), output);
    RunCommand.Outcome plain = plainRun.execute(json.enabled() ? new PrintWriter(plainJson) : out, err);
    if (plain.exitCode() != 0 || noControlNet) {
      out.print(plainJson);
      out.flush();
      return plain.exitCode();
    }
    RgbImage mask = ShapePlacement.discMask(CONTROL_SIZE, CONTROL_X, CONTROL_Y, CONTROL_RADIUS);
    Path controlImage = writeControlImage(mask);
    RunCommand controlRun = run(controlSource, controlOutput(output));
    controlRun.label = "demo controlnet";
    controlRun.generation.controlImages = new ArrayList<>(List.of(controlImage));
    StringWriter controlJson = new StringWriter();
    if (!json.enabled()) {
      out.println();
    }
    RunCommand.Outcome controlled = controlRun.execute(json.enabled() ? new PrintWriter(controlJson) : out, err);
    Map<String, Object> placement = new LinkedHashMap<>();
    boolean hit = false;
    if (controlled.exitCode() == 0) {
      double[] target = ShapePlacement.maskCentroid(mask);
      double[] found = ShapePlacement.shapeCentroid(controlled.result().images().get(0));
      double[] free = ShapePlacement.shapeCentroid(plain.result().images().get(0));
      double distance = ShapePlacement.distance(target, found);
      hit = distance <= HIT_PX;
      placement.put("control_centroid", point(target));
      placement.put("shape_centroid", point(found));
      placement.put("distance_px", round(distance));
      placement.put("within_px", HIT_PX);
      placement.put("hit", hit);
      placement.put("without_control", Map.of("image", plain.written().get(0).toAbsolutePath().toString(),
          "shape_centroid", point(free), "distance_px", round(ShapePlacement.distance(target, free))));
      if (!json.enabled()) {
        out.println(String.format(Locale.ROOT, "  control:  %s (white disc, radius %.0f, centroid %s)",
            Printable.line(controlImage.toString()), CONTROL_RADIUS, text(target)));
        out.println(String.format(Locale.ROOT, "  placed:   shape centroid %s, %s px from the control's: %s", text(found),
            distance(distance), hit ? "hit (within " + (int) HIT_PX + " px)" : "MISSED (more than " + (int) HIT_PX + " px)"));
        out.println(String.format(Locale.ROOT, "  without control (%s): shape centroid %s, %s px from it",
            Printable.line(plain.written().get(0).getFileName().toString()), text(free), distance(ShapePlacement.distance(target, free))));
      }
    }
    if (!hit && controlled.exitCode() == 0) {
      err.println("kiln: the ControlNet's shape landed more than " + (int) HIT_PX + " px from the control's centroid");
    }
    if (json.enabled()) {
      try {
        ObjectNode report = (ObjectNode) Json.mapper().readTree(plainJson.toString());
        ObjectNode control = (ObjectNode) Json.mapper().readTree(controlJson.toString());
        control.put("control_image", controlImage.toAbsolutePath().toString());
        control.set("placement", Json.mapper().valueToTree(placement));
        report.set("controlnet", control);
        out.println(Json.write(report));
      } catch (IOException e) {
        throw new UncheckedIOException("the run's own JSON report did not parse", e);
      }
    }
    out.flush();
    err.flush();
    return controlled.exitCode() != 0 ? controlled.exitCode() : hit ? 0 : 1;
  }

  /** kiln run with the demo's settings: the fixed prompt, DDIM 20 steps, the CPU. */
  private RunCommand run(Path source, Path file) {
    RunCommand run = new RunCommand();
    run.label = "demo";
    run.source = source;
    run.generation.prompt = PROMPT;
    run.generation.seed = seed;
    run.generation.scheduler = "ddim";
    run.generation.steps = 20;
    run.target = "cpu";
    run.output = file;
    run.json = json;
    return run;
  }

  /** NAME.png -> NAME-controlnet.png beside it. */
  static Path controlOutput(Path file) {
    String name = file.getFileName().toString();
    String stem = name.toLowerCase(Locale.ROOT).endsWith(".png") ? name.substring(0, name.length() - 4) : name;
    return file.resolveSibling(stem + "-controlnet.png");
  }

  /** The control image lives in Kiln's cache (a folder Kiln owns), never beside the user's files. */
  private static Path writeControlImage(RgbImage mask) {
    Path file = RunCommand.cacheRoot().resolve("demo").resolve(String.format(Locale.ROOT, "control-disc-r%.0f-%.0f-%.0f.png",
        CONTROL_RADIUS, CONTROL_X, CONTROL_Y));
    try {
      Files.createDirectories(file.getParent());
    } catch (IOException e) {
      throw new KilnException.BadInput("cache " + file.getParent() + ": cannot write (" + e.getMessage() + "); set KILN_CACHE to a writable folder");
    }
    AtomicFiles.write(file, PngWriter.encode(mask, Map.of()));
    return file;
  }

  private static List<Double> point(double[] centroid) {
    return centroid == null ? null : List.of(round(centroid[0]), round(centroid[1]));
  }

  private static double round(double value) {
    return Double.isFinite(value) ? Math.round(value * 100) / 100.0 : -1;
  }

  private static String text(double[] centroid) {
    return centroid == null ? "(none: nothing stands out)" : String.format(Locale.ROOT, "(%.1f, %.1f)", centroid[0], centroid[1]);
  }

  private static String distance(double value) {
    return Double.isFinite(value) ? String.format(Locale.ROOT, "%.2f", value) : "unmeasurable";
  }

  /** Finds the repository's tiny pipeline: kiln.root / KILN_ROOT, the folder above the CLI jar's target/, or the current directory. */
  static Path bundledPipeline() {
    return bundledPipeline(PIPELINE);
  }

  /** Finds one of the repository's pipelines ({@code relative} to its root) as {@link #bundledPipeline()} does. */
  static Path bundledPipeline(String relative) {
    List<Path> roots = new ArrayList<>();
    if (System.getProperty("kiln.root") != null) {
      roots.add(Path.of(System.getProperty("kiln.root")));
    }
    if (System.getenv("KILN_ROOT") != null) {
      roots.add(Path.of(System.getenv("KILN_ROOT")));
    }
    try {
      Path code = Path.of(DemoCommand.class.getProtectionDomain().getCodeSource().getLocation().toURI());
      // cli/target/kiln-cli.jar or cli/target/classes -> the repository root two folders up
      roots.add(code.getParent().getParent().getParent());
    } catch (Exception e) {
      // No code source location (unusual class loader): fall back to the working directory.
    }
    roots.add(Path.of("").toAbsolutePath());
    for (Path root : roots) {
      Path candidate = root.resolve(relative);
      if (Files.isDirectory(candidate)) {
        return candidate;
      }
    }
    throw new KilnException.BadInput("cannot find the bundled tiny pipeline " + relative + " (looked under " + roots
        + "); pass " + (relative.equals(PIPELINE) ? "--pipeline" : "--controlnet-pipeline") + " DIR or run from the Kiln checkout");
  }
}
