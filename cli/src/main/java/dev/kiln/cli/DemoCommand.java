package dev.kiln.cli;

import dev.kiln.common.Json;
import dev.kiln.common.KilnException;
import dev.kiln.common.Printable;
import dev.kiln.common.Progress;
import dev.kiln.optimizer.OptimizationReport;
import dev.kiln.validator.Validator;
import dev.kiln.validator.report.CheckResult;
import dev.kiln.validator.report.ComponentReport;
import dev.kiln.validator.report.ValidationReport;
import dev.kiln.validator.shapes.SizeSpec;
import dev.kiln.optimizer.Optimizer;
import dev.kiln.optimizer.profiles.Target;
import dev.kiln.runner.pipeline.Device;
import dev.kiln.runner.pipeline.GenerationRequest;
import dev.kiln.runner.pipeline.GenerationResult;
import dev.kiln.runner.pipeline.PipelineFolder;
import dev.kiln.runner.pipeline.PngOutput;
import dev.kiln.runner.pipeline.StableDiffusionPipeline;
import dev.kiln.runner.pipeline.StepListener;
import dev.kiln.runner.scheduler.SchedulerKind;
import java.io.PrintWriter;
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
 * {@code kiln demo}: the first command a new user runs. Takes the trained tiny pipeline that ships in the
 * repository through Kiln's stages and writes demo.png. The stage list is explicit: a stage whose module has
 * no API yet is reported as not available, never faked.
 */
@Command(name = "demo", mixinStandardHelpOptions = true,
    description = {"Generate demo.png from the bundled tiny pipeline: \"a red circle on a white background\".",
        "With --json: output, prompt, pipeline, stages (name, status, detail, ms) and timings."})
public final class DemoCommand implements Callable<Integer> {
  static final String PROMPT = "a red circle on a white background";
  static final String PIPELINE = "testdata/pipelines/tiny-sd";

  @Spec CommandSpec spec;

  @Option(names = "--pipeline", description = "Pipeline folder to use instead of the bundled " + PIPELINE + ".")
  Path pipeline;

  @Option(names = {"-o", "--output"}, defaultValue = "demo.png", description = "Output PNG (in the current directory unless a path is given).")
  Path output;

  @Option(names = "--seed", defaultValue = "0", description = "Seed of torch's CPU generator.")
  long seed;

  @Mixin JsonOption json;

  /** One stage of the demo and what happened in it. */
  record Stage(String name, String status, String detail, double milliseconds) {
    Map<String, Object> toJson() {
      Map<String, Object> json = new LinkedHashMap<>();
      json.put("name", name);
      json.put("status", status);
      json.put("detail", detail);
      json.put("ms", Math.round(milliseconds * 100) / 100.0);
      return json;
    }
  }

  @Override
  public Integer call() {
    PrintWriter out = spec.commandLine().getOut();
    PrintWriter err = spec.commandLine().getErr();
    Path source = pipeline != null ? pipeline : bundledPipeline();
    List<Stage> stages = new ArrayList<>();
    stages.add(new Stage("export", "not needed", "the tiny pipeline ships as ONNX in " + PIPELINE, 0));
    Path optimized = optimizeStage(source, stages);
    boolean validated = validateStage(source, optimized, stages);
    PipelineFolder folder = PipelineFolder.open(optimized);
    long start = System.nanoTime();
    GenerationResult result;
    List<Path> written;
    StableDiffusionPipeline opened;
    Map<String, Object> timings = new LinkedHashMap<>();
    try (StableDiffusionPipeline runner = StableDiffusionPipeline.open(folder, Device.CPU, 0, warning -> err.println(Printable.line(warning)))) {
      opened = runner;
      GenerationRequest request = GenerationRequest.of(PROMPT, seed).withScheduler(SchedulerKind.DDIM).withSteps(20);
      try (Progress progress = Progress.start("demo", 20, "steps", json.enabled())) {
        result = runner.generate(request, new StepListener() {
          @Override
          public void stepDone(int step, int total) {
            progress.step();
          }
        });
      }
      long pngStart = System.nanoTime();
      written = PngOutput.write(result, output);
      result.timings().add("png", System.nanoTime() - pngStart);
      timings.putAll(runner.loadTimings().toJson());
      timings.putAll(result.timings().toJson());
    }
    double generateMs = (System.nanoTime() - start) / 1e6;
    stages.add(new Stage("generate", "done", String.format(Locale.ROOT, "%dx%d, ddim %d steps, guidance 7.5, seed %d, cpu",
        result.width(), result.height(), result.steps(), seed), generateMs));
    Path image = written.get(0).toAbsolutePath();
    if (json.enabled()) {
      Map<String, Object> report = new LinkedHashMap<>();
      report.put("output", image.toString());
      report.put("prompt", PROMPT);
      report.put("pipeline", source.toAbsolutePath().toString());
      report.put("stages", stages.stream().map(Stage::toJson).toList());
      report.put("timings", timings);
      out.println(Json.write(report));
    } else {
      out.println("demo: wrote " + Printable.line(image.toString()) + " (\"" + PROMPT + "\")");
      for (Stage stage : stages) {
        out.println(String.format(Locale.ROOT, "  %-9s %-14s %s%s", stage.name() + ":", stage.status(), Printable.line(stage.detail()),
            stage.milliseconds() > 0 ? String.format(Locale.ROOT, " (%.0f ms)", stage.milliseconds()) : ""));
      }
      out.println("  timings: " + GenerateCommand.timings(result, opened, generateMs));
    }
    out.flush();
    return validated ? 0 : 1;
  }

  /**
   * Judges the optimized pipeline against the original with the validator (structure, CPU kernels, shapes proven
   * for every size, parity at the demo's 64x64 with one seed); false when a check failed.
   */
  private boolean validateStage(Path source, Path optimized, List<Stage> stages) {
    if (optimized.equals(source)) {
      stages.add(new Stage("validate", "skipped", "nothing was optimized to judge", 0));
      return true;
    }
    long start = System.nanoTime();
    ValidationReport report = Validator.validate(optimized, Validator.Options.defaults().withReference(source)
        .withShapes(SizeSpec.parse("batch=1;height=64;width=64")));
    double worst = 0;
    int sites = 0;
    int proven = 0;
    for (ComponentReport component : report.getComponents()) {
      for (CheckResult check : component.getChecks()) {
        if (check.metrics() != null && check.metrics().get("maxRelative") instanceof Number relative) {
          worst = Math.max(worst, relative.doubleValue());
        }
      }
      if (component.getSummary().get("shapeProof") instanceof Map<?, ?> proof) {
        sites += ((Number) proof.get("sites")).intValue();
        proven += ((Number) proof.get("proven")).intValue();
      }
    }
    String detail = report.isPassed()
        ? String.format(Locale.ROOT, "cpu profile vs original: %d checks passed, %d/%d shape sites proven for every size, "
            + "worst parity %.2g of scale", report.getChecks(), proven, sites, worst)
        : report.getFailures() + " of " + report.getChecks() + " checks failed: " + report.firstFailure();
    stages.add(new Stage("validate", report.isPassed() ? "passed" : "FAILED", detail, (System.nanoTime() - start) / 1e6));
    return report.isPassed();
  }

  /**
   * Runs the optimizer's CPU profile over the pipeline into a temporary folder (removed when the JVM exits) that
   * the generate stage then uses. If the optimizer refuses the pipeline, the stage says so and the original is used.
   */
  private Path optimizeStage(Path source, List<Stage> stages) {
    long start = System.nanoTime();
    try {
      Path scratch = Files.createTempDirectory("kiln-demo-");
      Runtime.getRuntime().addShutdownHook(new Thread(() -> deleteTree(scratch)));
      Path target = scratch.resolve("pipeline");
      OptimizationReport report = Optimizer.optimize(source, target, Optimizer.Options.of(Target.CPU));
      int before = report.components().stream().mapToInt(OptimizationReport.ComponentReport::nodesBefore).sum();
      int after = report.components().stream().mapToInt(OptimizationReport.ComponentReport::nodesAfter).sum();
      stages.add(new Stage("optimize", "done", String.format(Locale.ROOT, "cpu profile: %d -> %d nodes in %d models",
          before, after, report.components().size()), (System.nanoTime() - start) / 1e6));
      return target;
    } catch (KilnException | java.io.IOException | java.io.UncheckedIOException e) {
      stages.add(new Stage("optimize", "failed", e.getMessage() + "; using the unoptimized pipeline", (System.nanoTime() - start) / 1e6));
      return source;
    }
  }

  private static void deleteTree(Path root) {
    try (var paths = Files.walk(root)) {
      paths.sorted(java.util.Comparator.reverseOrder()).forEach(path -> path.toFile().delete());
    } catch (java.io.IOException ignored) {
      // Best effort at exit; the folder is in the temporary directory.
    }
  }

  /** Finds the repository's tiny pipeline: kiln.root / KILN_ROOT, the folder above the CLI jar's target/, or the current directory. */
  static Path bundledPipeline() {
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
      Path candidate = root.resolve(PIPELINE);
      if (Files.isDirectory(candidate)) {
        return candidate;
      }
    }
    throw new KilnException.BadInput("cannot find the bundled tiny pipeline " + PIPELINE + " (looked under " + roots
        + "); pass --pipeline DIR or run from the Kiln checkout");
  }
}
