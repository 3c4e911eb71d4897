package dev.kiln.cli;

import dev.kiln.bundle.BuildInfo;
import dev.kiln.bundle.BundleManifest;
import dev.kiln.common.Json;
import dev.kiln.common.KilnException;
import dev.kiln.common.OutputTarget;
import dev.kiln.common.Printable;
import dev.kiln.common.Progress;
import dev.kiln.common.ScratchFolder;
import dev.kiln.exporter.Exporter;
import dev.kiln.exporter.TorchScriptExporter;
import dev.kiln.optimizer.OptimizationReport;
import dev.kiln.optimizer.Optimizer;
import dev.kiln.optimizer.profiles.Target;
import dev.kiln.runner.InvalidRequest;
import dev.kiln.runner.pipeline.Device;
import dev.kiln.runner.pipeline.GenerationRequest;
import dev.kiln.runner.pipeline.GenerationResult;
import dev.kiln.runner.pipeline.PipelineFolder;
import dev.kiln.runner.pipeline.PngOutput;
import dev.kiln.runner.pipeline.StableDiffusionPipeline;
import dev.kiln.runner.pipeline.StepListener;
import dev.kiln.runner.scheduler.SchedulerKind;
import dev.kiln.validator.EpTarget;
import dev.kiln.validator.Validator;
import dev.kiln.validator.report.CheckResult;
import dev.kiln.validator.report.ComponentReport;
import dev.kiln.validator.report.ValidationReport;
import dev.kiln.validator.shapes.SizeSpec;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code kiln run}: TorchScript or ONNX in, image out, through every stage — export (TorchScript only), optimize for
 * the target, validate against the source, bundle into the cache, generate from the bundle. A second run with the
 * same source and options finds the bundle in the cache (keyed by a hash of the source's files, the target, the
 * validation settings and the Kiln build) and goes straight to generation.
 */
@Command(name = "run", mixinStandardHelpOptions = true,
    description = {"Export (TorchScript), optimize, validate and bundle a pipeline, then generate: one command from components to PNG.",
        "SOURCE: a TorchScript pipeline folder (component/model.pt), an ONNX pipeline folder, or a bundle (kiln bundle).",
        "Bundles are cached in $KILN_CACHE/bundles/<hash> (default ~/.cache/kiln/bundles); a second run reuses one and says so.",
        "Validation proves the --width/--height size (default: the UNet's sample size), at batch 1.",
        "Exit 1 and no image when validation fails. With --json: outputs, prompt, source, bundle, cached, target, stages (name, status, "
            + "detail, ms), control (images: image, scale, controlnet; guess_mode), timings and total_ms."})
public final class RunCommand implements Callable<Integer> {
  @Spec CommandSpec spec;

  @Parameters(index = "0", paramLabel = "SOURCE", description = "TorchScript pipeline folder, ONNX pipeline folder or bundle.")
  Path source;

  @Mixin GenerationOptions generation = new GenerationOptions();

  @Option(names = "--target", defaultValue = "auto", description = "auto (cuda when a GPU is detected, else cpu), cpu or cuda (default: ${DEFAULT-VALUE}).")
  String target;

  @Option(names = "--threads", defaultValue = "0", description = "Intra-op threads; 0 = one per core.")
  int threads;

  @Option(names = "--no-validate", description = "Skip the validation stage (recorded in the bundle's manifest).")
  boolean noValidate;

  @Option(names = {"-o", "--output"}, defaultValue = "out.png", description = "Output PNG; an existing file is replaced only if Kiln wrote it, or with --overwrite.")
  Path output;

  @Option(names = "--overwrite", description = "Replace a file at -o that Kiln did not write.")
  boolean overwrite;

  @Mixin JsonOption json;

  /** How the summary line starts: "run", or "demo" when kiln demo drives this command. */
  String label = "run";

  /** One stage: what happened and how long it took (the time stays out of the manifest, the record goes in). */
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

  /** What a run did, for the demo and the tests. */
  record Outcome(int exitCode, List<Stage> stages, Path bundle, boolean cached, List<Path> written, GenerationResult result) {}

  @Override
  public Integer call() {
    try {
      return execute(spec.commandLine().getOut(), spec.commandLine().getErr()).exitCode();
    } catch (InvalidRequest e) {
      throw new KilnException.BadInput(GenerationOptions.FLAGS.getOrDefault(e.field(), e.field()) + " " + e.problem(), e);
    }
  }

  Outcome execute(PrintWriter out, PrintWriter err) {
    long runStart = System.nanoTime();
    Target chosen = chooseTarget(target);
    Device device = chosen == Target.CPU ? Device.CPU : Device.CUDA;
    SchedulerKind kind = generation.schedulerKind();
    GenerationRequest request = generation.request(generation.actualSeed(), spec);
    if (!Files.isDirectory(source)) {
      throw new KilnException.BadInput(source + ": not a folder (expected a TorchScript or ONNX pipeline folder, or a bundle)");
    }
    List<Path> inputs = generation.inputs(source);
    for (OutputTarget png : PngOutput.targets(output, request.batch(), overwrite, inputs)) {
      png.check();
    }
    request = generation.withImages(request);
    List<Stage> stages = new ArrayList<>();
    Path bundle;
    boolean cached;
    try (Progress progress = Progress.start("run", 1, "stages", json.enabled())) {
      if (BundleManifest.isBundle(source)) {
        long start = System.nanoTime();
        int files = BundleManifest.verify(source);
        bundle = source;
        cached = true;
        for (String name : List.of("export", "optimize", "validate")) {
          stages.add(new Stage(name, "in bundle", "done when the bundle was built (kiln inspect shows it)", 0));
        }
        stages.add(new Stage("bundle", "given", "verified " + files + " files against " + BundleManifest.FILE, ms(start)));
      } else {
        boolean torchScript = isTorchScript(source);
        Path cacheRoot = cacheRoot();
        long lookup = System.nanoTime();
        String key = cacheKey(source, chosen, validationSizes(null));
        bundle = cacheRoot.resolve("bundles").resolve(key);
        cached = isUsable(bundle);
        if (cached) {
          for (String name : List.of("export", "optimize", "validate")) {
            stages.add(new Stage(name, "cached", "recorded in the cached bundle's manifest", 0));
          }
          // The time is the source hashing for the key plus the bundle's verification against its manifest.
          stages.add(new Stage("bundle", "reused", "cached bundle " + bundle + " (same source, target and options; verified)", ms(lookup)));
        } else {
          Integer code = build(torchScript, chosen, cacheRoot, bundle, stages, progress, err);
          if (code != null) {
            printStages(out, stages, null, runStart);
            return new Outcome(code, stages, null, false, List.of(), null);
          }
        }
      }
      // Generation runs from the bundle exactly as bin/generate would, under the source's name.
      long start = System.nanoTime();
      String name = BundleManifest.read(bundle).path("pipeline").path("name").asText(bundle.getFileName().toString());
      PipelineFolder folder = PipelineFolder.open(bundle, name);
      GenerationResult result;
      List<Path> written;
      Map<String, Object> timings = new LinkedHashMap<>();
      List<Path> controlNets;
      try (StableDiffusionPipeline runner = StableDiffusionPipeline.open(folder, device, threads, line -> err.println(Printable.line(line)),
          generation.controlNets)) {
        SchedulerKind used = kind != null ? kind : folder.defaultScheduler();
        int total = used == null ? 0 : used.evaluations(generation.steps != null ? generation.steps : used.usualSteps());
        progress.restart("run: generate", total);
        result = runner.generate(request, new StepListener() {
          @Override
          public void stepDone(int step, int count) {
            progress.step();
          }
        });
        written = PngOutput.write(result, output, overwrite, inputs);
        timings.putAll(runner.loadTimings().toJson());
        controlNets = runner.controlNets();
        timings.putAll(result.timings().toJson());
      }
      stages.add(new Stage("generate", "done", String.format(Locale.ROOT, "%dx%d, %s %d steps, guidance %s, seed %d, %s", result.width(),
          result.height(), result.scheduler().cliName(), result.steps(), result.guidance(), result.seed(), device.cliName()), ms(start)));
      for (String note : result.notes()) {
        err.println("kiln: note: " + Printable.line(note));
      }
      err.flush();
      progress.close();
      Outcome outcome = new Outcome(0, stages, bundle, cached, written, result);
      if (json.enabled()) {
        Map<String, Object> report = new LinkedHashMap<>();
        report.put("outputs", written.stream().map(path -> path.toAbsolutePath().toString()).toList());
        report.put("prompt", generation.prompt);
        report.put("source", source.toAbsolutePath().toString());
        report.put("bundle", bundle.toAbsolutePath().toString());
        report.put("cached", cached);
        report.put("target", chosen.id());
        report.put("stages", stages.stream().map(Stage::toJson).toList());
        report.put("control", generation.controlReport(controlNets));
        report.put("timings", timings);
        report.put("total_ms", Math.round(ms(runStart) * 100) / 100.0);
        out.println(Json.write(report));
      } else {
        printStages(out, stages, written, runStart);
      }
      out.flush();
      return outcome;
    }
  }

  /** export → optimize → validate → bundle into the cache; a failed validation returns 1 (nothing is bundled). */
  private Integer build(boolean torchScript, Target chosen, Path cacheRoot, Path bundle, List<Stage> stages, Progress progress,
      PrintWriter err) {
    List<Map<String, Object>> records = new ArrayList<>();
    Path scratch;
    try {
      Files.createDirectories(cacheRoot.resolve("work"));
      ScratchFolder.removeDead(cacheRoot.resolve("work"), "run-");
      scratch = Files.createTempDirectory(cacheRoot.resolve("work"), "run-" + ProcessHandle.current().pid() + "-");
    } catch (IOException e) {
      throw new KilnException.BadInput("cache " + cacheRoot + ": cannot write (" + e.getMessage() + "); set KILN_CACHE to a writable folder");
    }
    try {
      Path onnx = source;
      long start = System.nanoTime();
      if (torchScript) {
        Path exported = scratch.resolve("exported");
        progress.restart("run: export", Exporter.componentCount(source, null));
        Exporter.Report report = Exporter.export(source, exported, TorchScriptExporter.DEFAULT_OPSET, null, false, component -> progress.step());
        int filled = ExportedShapes.complete(BundleWriter.realPath(exported));
        List<Map<String, Object>> components = new ArrayList<>();
        int nodes = 0;
        for (Exporter.ComponentReport component : report.components()) {
          Map<String, Object> entry = new LinkedHashMap<>();
          entry.put("component", component.kind());
          entry.put("nodes", component.nodes());
          entry.put("initializers", component.initializers());
          components.add(entry);
          nodes += component.nodes();
        }
        String detail = String.format(Locale.ROOT, "TorchScript -> ONNX opset %d: %d components, %d nodes, %d input dims from the configs",
            report.opset(), report.components().size(), nodes, filled);
        records.add(record("export", "done", detail, Map.of("opset", report.opset(), "components", components, "inputDimsFromConfigs", filled)));
        stages.add(new Stage("export", "done", detail, ms(start)));
        onnx = exported;
      } else {
        stages.add(new Stage("export", "not needed", "the source is ONNX", 0));
      }
      start = System.nanoTime();
      progress.restart("run: optimize", 1);
      Path optimized = scratch.resolve("optimized");
      OptimizationReport optimization = Optimizer.optimize(onnx, optimized, Optimizer.Options.of(chosen));
      progress.step();
      int before = 0;
      int after = 0;
      List<Map<String, Object>> components = new ArrayList<>();
      for (OptimizationReport.ComponentReport component : optimization.components()) {
        before += component.nodesBefore();
        after += component.nodesAfter();
        Map<String, Object> entry = new LinkedHashMap<>();
        entry.put("component", component.component());
        entry.put("nodesBefore", component.nodesBefore());
        entry.put("nodesAfter", component.nodesAfter());
        Map<String, Integer> rules = new TreeMap<>();
        component.rules().forEach((rule, result) -> rules.put(rule, result.applied()));
        entry.put("rules", rules);
        entry.put("passes", new TreeMap<>(component.passes()));
        components.add(entry);
      }
      String optimizeDetail = String.format(Locale.ROOT, "%s profile: %d -> %d nodes in %d models", chosen.id(), before, after,
          optimization.components().size());
      records.add(record("optimize", "done", optimizeDetail, Map.of("target", chosen.id(), "components", components)));
      stages.add(new Stage("optimize", "done", optimizeDetail, ms(start)));
      start = System.nanoTime();
      if (noValidate) {
        records.add(record("validate", "skipped", "--no-validate: not checked against the source", Map.of()));
        stages.add(new Stage("validate", "skipped", "--no-validate (recorded in the manifest)", 0));
      } else {
        progress.restart("run: validate", 1);
        String sizes = validationSizes(PipelineFolder.open(optimized));
        ValidationReport report = Validator.validate(optimized, Validator.Options.defaults().withReference(onnx)
            .withTarget(EpTarget.parse(chosen.id())).withShapes(SizeSpec.parse(sizes)));
        progress.step();
        Map<String, Object> numbers = validationNumbers(report, sizes);
        String detail = report.isPassed()
            ? String.format(Locale.ROOT, "%s profile vs %s: %d checks passed at %s, worst parity %.2g of scale", chosen.id(),
                torchScript ? "the export" : "the source", report.getChecks(), sizes, (Double) numbers.get("worstRelative"))
            : report.getFailures() + " of " + report.getChecks() + " checks failed: " + report.firstFailure();
        stages.add(new Stage("validate", report.isPassed() ? "passed" : "FAILED", detail, ms(start)));
        if (!report.isPassed()) {
          err.println("kiln: validation failed, no bundle and no image: " + Printable.line(report.firstFailure()));
          return 1;
        }
        records.add(record("validate", "passed", detail, numbers));
      }
      start = System.nanoTime();
      progress.restart("run: bundle", 1);
      OutputTarget cache = OutputTarget.folder(bundle, "run").inputs(source);
      BundleWriter.Written written = BundleWriter.write(optimized, cache, chosen, new BundleWriter.Provenance(source, records));
      progress.step();
      stages.add(new Stage("bundle", "built", String.format(Locale.ROOT, "%s (%.1f MB: models %.1f, lib %.1f)", bundle,
          written.bytes() / 1e6, written.modelBytes() / 1e6, written.libraryBytes() / 1e6), ms(start)));
      return null;
    } finally {
      deleteTree(scratch);
    }
  }

  static Map<String, Object> record(String name, String status, String detail, Map<String, Object> extra) {
    Map<String, Object> record = new LinkedHashMap<>();
    record.put("name", name);
    record.put("status", status);
    record.put("detail", detail);
    record.putAll(new TreeMap<>(extra));
    return record;
  }

  /** The verdict's numbers for the manifest: checks, failures, sizes and the worst error per component output. */
  static Map<String, Object> validationNumbers(ValidationReport report, String sizes) {
    Map<String, Object> numbers = new LinkedHashMap<>();
    numbers.put("checks", report.getChecks());
    numbers.put("failures", report.getFailures());
    numbers.put("sizes", sizes);
    Map<String, Object> worst = new TreeMap<>();
    double overall = 0;
    for (ComponentReport component : report.getComponents()) {
      for (CheckResult check : component.getChecks()) {
        if (check.metrics() != null && check.metrics().get("maxRelative") instanceof Number relative) {
          String key = component.getName() + (check.output() == null ? "" : "/" + check.output());
          Map<String, Object> entry = new LinkedHashMap<>();
          entry.put("maxRelative", relative.doubleValue());
          entry.put("maxAbs", check.metrics().get("maxAbs"));
          Object previous = worst.get(key);
          if (!(previous instanceof Map<?, ?> map) || ((Number) map.get("maxRelative")).doubleValue() < relative.doubleValue()) {
            worst.put(key, entry);
          }
          overall = Math.max(overall, relative.doubleValue());
        }
      }
    }
    numbers.put("worstPerOutput", worst);
    numbers.put("worstRelative", overall);
    return numbers;
  }

  /** The size validation proves: the requested one (or the UNet's default), batch 1. */
  String validationSizes(PipelineFolder folder) {
    int size = folder == null ? 0 : folder.defaultSize();
    String w = generation.width != null ? String.valueOf(generation.width) : folder == null ? "default" : String.valueOf(size);
    String h = generation.height != null ? String.valueOf(generation.height) : folder == null ? "default" : String.valueOf(size);
    return "batch=1;height=" + h + ";width=" + w;
  }

  /**
   * The cache key: sha256 over the Kiln build, the bundle format, the target, whether and at what size validation ran,
   * and every source file's path and sha256 — everything a bundle depends on and nothing it does not (prompt, seed).
   */
  String cacheKey(Path folder, Target chosen, String sizes) {
    MessageDigest digest = BundleManifest.newDigest();
    BuildInfo build = BuildInfo.current();
    List<String> parts = new ArrayList<>(List.of("kiln " + build.version() + " " + build.commit(), "format " + BundleManifest.FORMAT_VERSION,
        "target " + chosen.id(), noValidate ? "no-validate" : "validate " + sizes));
    Map<String, Object> files = BundleWriter.listing(BundleWriter.realPath(folder), java.util.Set.of(OutputTarget.MARKER));
    files.forEach((path, entry) -> parts.add(path + " " + ((Map<?, ?>) entry).get("sha256")));
    for (String part : parts) {
      digest.update(part.getBytes(StandardCharsets.UTF_8));
      digest.update((byte) '\n');
    }
    return HexFormat.of().formatHex(digest.digest()).substring(0, 32);
  }

  /** A cached bundle is reused only when it is complete and unmodified; anything else is rebuilt over it. */
  static boolean isUsable(Path bundle) {
    if (!BundleManifest.isBundle(bundle)) {
      return false;
    }
    try {
      BundleManifest.verify(bundle);
      return true;
    } catch (KilnException e) {
      return false;
    }
  }

  /** $KILN_CACHE, else ~/.cache/kiln. */
  static Path cacheRoot() {
    return dev.kiln.common.KilnCache.root();
  }

  static Target chooseTarget(String text) {
    String normalized = text.toLowerCase(Locale.ROOT);
    if (normalized.equals("auto")) {
      return Device.gpuPresent() ? Target.CUDA : Target.CPU;
    }
    if (normalized.equals("cpu") || normalized.equals("cuda")) {
      return Target.parse(normalized);
    }
    throw new KilnException.BadInput("--target: expected auto, cpu or cuda, got " + Printable.quoted(text));
  }

  /** A folder with some component/model.pt and no model.onnx beside it. */
  static boolean isTorchScript(Path folder) {
    for (String component : List.of("text_encoder", "text_encoder_2", "unet", "controlnet", "vae_decoder", "vae_encoder")) {
      if (Files.isRegularFile(folder.resolve(component).resolve("model.pt")) && !Files.isRegularFile(folder.resolve(component).resolve("model.onnx"))) {
        return true;
      }
    }
    return false;
  }

  private void printStages(PrintWriter out, List<Stage> stages, List<Path> written, long runStart) {
    if (json.enabled()) {
      Map<String, Object> report = new LinkedHashMap<>();
      report.put("outputs", List.of());
      report.put("source", source.toAbsolutePath().toString());
      report.put("stages", stages.stream().map(Stage::toJson).toList());
      out.println(Json.write(report));
      out.flush();
      return;
    }
    if (written != null) {
      for (Path path : written) {
        out.println(label + ": wrote " + Printable.line(path.toAbsolutePath().toString()) + " (" + Printable.quoted(generation.prompt) + ")");
      }
    }
    out.print(table(stages));
    out.println(String.format(Locale.ROOT, "  total: %.0f ms", ms(runStart)));
    out.flush();
  }

  /** The stage table: name, result, what happened, time. */
  static String table(List<Stage> stages) {
    StringBuilder text = new StringBuilder();
    for (Stage stage : stages) {
      text.append(String.format(Locale.ROOT, "  %-9s %-11s %s%s%n", stage.name() + ":", stage.status(), Printable.line(stage.detail()),
          stage.milliseconds() > 0 ? String.format(Locale.ROOT, " (%.0f ms)", stage.milliseconds()) : ""));
    }
    return text.toString();
  }

  static double ms(long start) {
    return (System.nanoTime() - start) / 1e6;
  }

  static void deleteTree(Path root) {
    ScratchFolder.deleteTree(root);
  }
}
