package dev.kiln.optimizer;

import dev.kiln.common.KillPoints;
import dev.kiln.common.KilnException;
import dev.kiln.common.OutputTarget;
import dev.kiln.common.PhaseTimes;
import dev.kiln.common.StagedFile;
import dev.kiln.common.StagedFolder;
import dev.kiln.common.PipelineLayout;
import dev.kiln.graph.ExternalTensor;
import dev.kiln.graph.Graph;
import dev.kiln.graph.Model;
import dev.kiln.graph.ModelReader;
import dev.kiln.graph.ModelWriter;
import dev.kiln.graph.Value;
import dev.kiln.graph.Verifier;
import dev.kiln.graph.WriteOptions;
import dev.kiln.optimizer.OptimizationReport.ComponentReport;
import dev.kiln.optimizer.OptimizationReport.RuleReport;
import dev.kiln.optimizer.engine.DriverReport;
import dev.kiln.optimizer.engine.RewriteDriver;
import dev.kiln.optimizer.engine.Rule;
import dev.kiln.optimizer.engine.RuleStats;
import dev.kiln.optimizer.inputs.InputCheck;
import dev.kiln.optimizer.profiles.Component;
import dev.kiln.optimizer.profiles.Profiles;
import dev.kiln.optimizer.profiles.Target;
import dev.kiln.optimizer.specialize.OutputPruning;
import dev.kiln.optimizer.specialize.PipelineDims;
import dev.kiln.optimizer.specialize.ControlNetShapes;
import dev.kiln.optimizer.specialize.Specialization;
import dev.kiln.optimizer.specialize.StaticShapes;
import dev.kiln.optimizer.precision.PipelineCalibration;
import dev.kiln.optimizer.precision.Precision;
import dev.kiln.optimizer.precision.PrecisionOptions;
import dev.kiln.optimizer.precision.PrecisionReport;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Stream;

/**
 * The optimizer's public face: optimize one model (in memory or file to file) or a whole diffusers/Optimum
 * pipeline folder for a target execution provider, and say what was done.
 */
public final class Optimizer {
  private Optimizer() {}

  /** Pipeline sub-folders and the component each holds. */
  private static final Map<String, Component> PIPELINE_FOLDERS = Map.of(
      PipelineLayout.TEXT_ENCODER, Component.TEXT_ENCODER, PipelineLayout.TEXT_ENCODER_2, Component.TEXT_ENCODER,
      PipelineLayout.UNET, Component.UNET, PipelineLayout.CONTROLNET, Component.CONTROLNET, PipelineLayout.VAE_DECODER, Component.VAE_DECODER, PipelineLayout.VAE_ENCODER, Component.VAE_ENCODER);

  /**
   * @param component null = detect from the graph's input/output names
   * @param disabled rule or pass names to skip
   * @param verifyEachStep run the IR verifier after every sweep and pass (tests turn it on)
   * @param cudaKernelLimits refuse CUDA fusions whose sizes ORT's CUDA kernels reject at run time (default on;
   *     off only to prove the rewrites on small test graphs that no GPU would be given)
   * @param listener told of each component and step (progress); {@link OptimizerListener#NONE} for none
   * @param specialization fold limit and static dims ({@link Specialization#NONE}: defaults, dynamic shapes)
   * @param precision the precision stage run after every fusion (fp32: none)
   */
  public record Options(Target target, Component component, Set<String> disabled, boolean verifyEachStep,
      boolean cudaKernelLimits, OptimizerListener listener, Specialization specialization, PrecisionOptions precision) {
    public Options {
      disabled = Set.copyOf(disabled);
      listener = listener == null ? OptimizerListener.NONE : listener;
      specialization = specialization == null ? Specialization.NONE : specialization;
      precision = precision == null ? PrecisionOptions.FP32 : precision;
    }

    public Options(Target target, Component component, Set<String> disabled, boolean verifyEachStep,
        boolean cudaKernelLimits, OptimizerListener listener) {
      this(target, component, disabled, verifyEachStep, cudaKernelLimits, listener, Specialization.NONE, PrecisionOptions.FP32);
    }

    public Options withSpecialization(Specialization specialization) {
      return new Options(target, component, disabled, verifyEachStep, cudaKernelLimits, listener, specialization, precision);
    }

    public Options withPrecision(PrecisionOptions precision) {
      return new Options(target, component, disabled, verifyEachStep, cudaKernelLimits, listener, specialization, precision);
    }

    public Options(Target target, Component component, Set<String> disabled, boolean verifyEachStep, boolean cudaKernelLimits) {
      this(target, component, disabled, verifyEachStep, cudaKernelLimits, OptimizerListener.NONE);
    }

    public static Options of(Target target) {
      return new Options(target, null, Set.of(), false, true);
    }

    public Options withComponent(Component component) {
      return new Options(target, component, disabled, verifyEachStep, cudaKernelLimits, listener, specialization, precision);
    }

    public Options verifying() {
      return new Options(target, component, disabled, true, cudaKernelLimits, listener, specialization, precision);
    }

    public Options withoutCudaKernelLimits() {
      return new Options(target, component, disabled, verifyEachStep, false, listener, specialization, precision);
    }

    public Options withListener(OptimizerListener listener) {
      return new Options(target, component, disabled, verifyEachStep, cudaKernelLimits, listener, specialization, precision);
    }
  }

  /** Optimizes {@code model} in place. */
  public static ComponentReport optimize(Model model, String label, Options options) {
    long start = System.nanoTime();
    // Refuse what the rules could misread before any rule reads it (warnings go to the file-level report).
    InputCheck.check(model, label);
    Component component = options.component() != null ? options.component() : Component.detect(model.graph(), label);
    Profiles.Profile profile =
        Profiles.of(options.target(), component, options.cudaKernelLimits(), options.specialization().foldLimitBytes());
    // A pipeline shares one --disable list across components, so a name must exist in some profile of the target.
    Set<String> known = new java.util.TreeSet<>();
    for (Component each : Component.values()) {
      known.addAll(Profiles.of(options.target(), each).names());
    }
    for (String disabled : options.disabled()) {
      if (!known.contains(disabled)) {
        throw new KilnException.BadInput("--disable " + disabled + ": no such rule or pass in the " + options.target().id()
            + " profiles (they have " + known + ")");
      }
    }
    int nodesBefore = model.graph().totalNodeCount();
    Map<String, Integer> opsBefore = histogram(model.graph());
    Map<String, RuleReport> rules = new LinkedHashMap<>();
    Map<String, Integer> passes = new LinkedHashMap<>();
    Map<String, int[]> applied = new LinkedHashMap<>();
    Map<String, Map<String, Integer>> rejected = new LinkedHashMap<>();
    Map<String, Map<String, List<String>>> nearMisses = new LinkedHashMap<>();
    Specialization specialization = options.specialization();
    if (specialization.prunesOutputs()) {
      if (component != Component.TEXT_ENCODER) {
        throw new KilnException.BadInput(label + ": --clip-skip and --keep-output apply to text encoders; this is a "
            + component.id());
      }
      // An SDXL encoder 2 says so by its projected output; a folder tells for both of its encoders.
      boolean sdxl = specialization.sdxl() || model.graph().outputs().stream().anyMatch(value -> value.name().equals("text_embeds"));
      OutputPruning.Removed removed = specialization.keepOutputs().isEmpty()
          ? OutputPruning.clipSkip(model, specialization.clipSkip(), sdxl, label)
          : OutputPruning.keepOutputs(model, specialization.keepOutputs(), label);
      passes.put("prune-outputs", removed.nodes());
      passes.put("prune-outputs.initializers", removed.initializers());
      passes.put("prune-outputs.bytes", (int) Math.min(Integer.MAX_VALUE, removed.bytes()));
      passes.put("prune-outputs.inputs", removed.inputs());
      if (specialization.clipSkip() != null && specialization.keepOutputs().isEmpty()) {
        model.metadata().put(CLIP_SKIP, Integer.toString(specialization.clipSkip()));
      }
    }
    if (specialization.isStatic()) {
      Map<String, Long> dims = specialization.staticDims();
      Set<String> symbolic = StaticShapes.symbolicDims(model.graph());
      if (!symbolic.containsAll(dims.keySet())) {
        Set<String> unknown = new java.util.TreeSet<>(dims.keySet());
        unknown.removeAll(symbolic);
        throw new KilnException.BadInput(label + ": --static names " + unknown + ", which no input of the model has "
            + "(its symbolic dims are " + symbolic + ")");
      }
      passes.put("static-shapes", StaticShapes.apply(model, dims, specialization.foldLimitBytes(), label));
      model.metadata().put(STATIC_SHAPES, staticDescription(dims));
    }
    List<Profiles.Step> steps = profile.steps();
    // The ControlNet interface's inputs (control image, residuals) are declared in the sample's dims while the rules run.
    Map<Value, dev.kiln.graph.Shape> interfaceShapes = ControlNetShapes.bind(model);
    options.listener().componentStarted(label, component, steps.size());
    for (int index = 0; index < steps.size(); index++) {
      Profiles.Step step = steps.get(index);
      options.listener().stepStarted(stepName(step), index + 1, steps.size());
      long stepStart = System.nanoTime();
      runStep(step, model, options, applied, rejected, nearMisses, passes);
      if (Boolean.getBoolean("kiln.debugTimings")) {
        System.err.printf("step %s: %d ms%n", step, (System.nanoTime() - stepStart) / 1_000_000);
      }
      PhaseTimes.mark(stepName(step));
      options.listener().stepFinished(stepName(step), index + 1, steps.size());
    }
    ControlNetShapes.restore(interfaceShapes);
    applied.forEach((name, count) -> rules.put(name, new RuleReport(count[0], rejected.getOrDefault(name, Map.of()),
        nearMisses.getOrDefault(name, Map.of()))));
    return new ComponentReport(label, component.id(), options.target().id(), nodesBefore, model.graph().totalNodeCount(),
        opsBefore, histogram(model.graph()), rules, passes, (System.nanoTime() - start) / 1_000_000);
  }

  /** The metadata_props key (and model_index.json "kiln_clip_skip") of a text encoder pruned to one clip skip. */
  public static final String CLIP_SKIP = "kiln.clip_skip";

  /** The metadata_props key of a model specialized by --static: the bound dims, "name=size" joined by commas. */
  public static final String STATIC_SHAPES = "kiln.static";

  static String staticDescription(Map<String, Long> dims) {
    StringBuilder text = new StringBuilder();
    new TreeMap<>(dims).forEach((name, size) -> text.append(text.length() == 0 ? "" : ",").append(name).append('=').append(size));
    return text.toString();
  }

  /** A pass by its name; a sweep by its first rule and how many run with it. */
  private static String stepName(Profiles.Step step) {
    if (step instanceof Profiles.RuleStep ruleStep) {
      List<Rule> rules = ruleStep.rules();
      return rules.isEmpty() ? "rules" : rules.get(0).name() + (rules.size() > 1 ? " +" + (rules.size() - 1) + " rules" : "");
    }
    return ((Profiles.PassStep) step).pass().name();
  }

  /**
   * The models {@link #optimize(Path, Path, Options)} will rewrite, in its order: the file itself, or each pipeline
   * component folder that holds a model.onnx (for progress: "component 2 of 4").
   */
  public static List<Path> modelsOf(Path input) {
    if (!Files.isDirectory(input)) {
      return List.of(input);
    }
    List<String> folders = new ArrayList<>(PIPELINE_FOLDERS.keySet());
    folders.sort(null);
    return folders.stream().map(folder -> input.resolve(folder).resolve("model.onnx")).filter(Files::isRegularFile).toList();
  }

  private static void runStep(Profiles.Step step, Model model, Options options, Map<String, int[]> applied,
      Map<String, Map<String, Integer>> rejected, Map<String, Map<String, List<String>>> nearMisses,
      Map<String, Integer> passes) {
    if (step instanceof Profiles.RuleStep ruleStep) {
        List<Rule> enabled = new ArrayList<>();
        for (Rule rule : ruleStep.rules()) {
          if (!options.disabled().contains(rule.name())) {
            enabled.add(rule);
          }
        }
        if (enabled.isEmpty()) {
          return;
        }
        DriverReport report = new RewriteDriver(enabled, 16, options.verifyEachStep() ? Verifier::verify : null).run(model);
        for (RuleStats stats : report.rules()) {
          applied.computeIfAbsent(stats.rule(), name -> new int[1])[0] += stats.applied();
          // The last run of a rule has the final word on why sites were declined.
          rejected.put(stats.rule(), new TreeMap<>(stats.rejections()));
          nearMisses.put(stats.rule(), new TreeMap<>(stats.nearMisses()));
        }
      } else {
        var pass = ((Profiles.PassStep) step).pass();
        if (options.disabled().contains(pass.name())) {
          return;
        }
        passes.merge(pass.name(), pass.run(model), Integer::sum);
        if (options.verifyEachStep()) {
          Verifier.verify(model);
        }
      }
  }

  /** Optimizes a .onnx file or a pipeline folder into {@code output} (same layout; other files copied). */
  public static OptimizationReport optimize(Path input, Path output, Options options) {
    return optimize(input, outputTarget(input, output, false), options);
  }

  /**
   * The output rules for optimizing {@code input} into {@code output}: a folder for a pipeline, a file for a
   * model (recognised as Kiln's by its {@value #PRODUCED_BY} metadata entry); --overwrite as given.
   */
  public static OutputTarget outputTarget(Path input, Path output, boolean overwrite) {
    OutputTarget target = Files.isDirectory(input) ? OutputTarget.folder(output, "optimize")
        : OutputTarget.file(output, "optimize").recognizedBy(Optimizer::isKilnModel);
    return target.inputs(input).overwrite(overwrite);
  }

  /** The metadata_props key every model file Kiln's optimizer writes carries. */
  public static final String PRODUCED_BY = "kiln.producer";

  /** Whether {@code file} is an ONNX model this optimizer wrote (and so may be replaced without --overwrite). */
  public static boolean isKilnModel(Path file) {
    try {
      return ModelReader.readProto(file).getMetadataPropsList().stream().anyMatch(entry -> entry.getKey().equals(PRODUCED_BY));
    } catch (RuntimeException unreadable) {
      return false;
    }
  }

  /** Optimizes into {@code output}, whose rules are checked before anything is read, and replaced as a whole. */
  public static OptimizationReport optimize(Path input, OutputTarget output, Options options) {
    long start = System.nanoTime();
    if (!Files.exists(input)) {
      throw new KilnException.BadInput(input + ": no such file or folder");
    }
    output.check();
    List<ComponentReport> reports = new ArrayList<>();
    List<String> warnings = new ArrayList<>();
    Map<String, PrecisionReport> precision = new LinkedHashMap<>();
    if (Files.isDirectory(input)) {
      reports.addAll(optimizeFolder(input, output, options, warnings, precision));
    } else {
      PhaseTimes.mark("start");
      Model model = ModelReader.read(input);
      PhaseTimes.mark("read");
      // The data files the model reads are inputs too: the output may not replace them.
      OutputTarget target = output.inputs(externalFiles(model.graph()));
      target.check();
      warnings.addAll(InputCheck.check(model, input.toString()));
      ComponentReport report = optimize(model, input.toString(), options);
      announcePrecision(options);
      PrecisionReport converted = Precision.apply(model, input, null, options.precision());
      PhaseTimes.mark("precision");
      if (converted != null) {
        precision.put(output.path().toString(), converted);
      }
      model.metadata().put(PRODUCED_BY, "optimize --target " + options.target().id() + precisionSuffix(options));
      try (StagedFile staged = target.stageFile()) {
        ModelWriter.write(model, staged, WriteOptions.defaults());
        staged.commit();
      }
      PhaseTimes.mark("written");
      reports.add(withPath(report, output.path().toString()));
    }
    return new OptimizationReport(options.target().id(), reports, (System.nanoTime() - start) / 1_000_000, warnings,
        precision);
  }

  /** Names the precision stage on the progress line (a mixed search runs ORT sessions for a while). */
  private static void announcePrecision(Options options) {
    if (options.precision().mode() != PrecisionOptions.Mode.FP32) {
      options.listener().precisionStarted(options.precision().mode().id());
    }
  }

  private static String precisionSuffix(Options options) {
    return options.precision().mode() == PrecisionOptions.Mode.FP32 ? "" : " --precision " + options.precision().mode().id();
  }

  private static List<ComponentReport> optimizeFolder(Path input, OutputTarget output, Options options, List<String> warnings,
      Map<String, PrecisionReport> precision) {
    if (!Files.isRegularFile(input.resolve("model_index.json"))) {
      throw new KilnException.BadInput(input + ": a folder must be a pipeline (model_index.json missing)");
    }
    List<ComponentReport> reports = new ArrayList<>();
    Map<String, Long> staticDims = options.specialization().staticDims();
    int vaeFactor = staticDims.isEmpty() ? 8 : PipelineDims.check(input, staticDims);
    try {
      // Walk the real folder (the input may itself be Kiln's link to an output), and protect every file it
      // links to: the output may replace none of them.
      Path realInput = input.toRealPath();
      OutputTarget target = output.inputs(filesUnder(realInput));
      target.check();
      // Mixed precision without --calibration: real inputs recorded from the runner on the float32 input folder.
      if ((options.precision().mode() == PrecisionOptions.Mode.MIXED || options.precision().mode() == PrecisionOptions.Mode.INT8)
          && options.precision().calibration() == null) {
        announcePrecision(options);
      }
      PipelineCalibration.Capture calibration = Precision.pipelineCalibration(realInput, options.precision(), staticDims,
          PipelineCalibration.Listener.NONE);
      try (StagedFolder staged = target.stageFolder()) {
        Path staging = staged.path();
        Set<Path> skip = new HashSet<>();
        List<String> folders = new ArrayList<>(PIPELINE_FOLDERS.keySet());
        folders.sort(null);
        for (String folder : folders) {
          Path modelPath = realInput.resolve(folder).resolve("model.onnx");
          if (!Files.isRegularFile(modelPath)) {
            continue;
          }
          Model model = ModelReader.read(modelPath);
          skip.add(modelPath.toAbsolutePath().normalize());
          skip.addAll(externalFiles(model.graph()));
          Options componentOptions = options.component() != null ? options : options.withComponent(PIPELINE_FOLDERS.get(folder));
          if (options.specialization().prunesOutputs()) {
            if (PIPELINE_FOLDERS.get(folder) != Component.TEXT_ENCODER) {
              componentOptions = componentOptions.withSpecialization(componentOptions.specialization().withClipSkip(null)
                  .withKeepOutputs(List.of()));
            } else {
              componentOptions = componentOptions.withSpecialization(componentOptions.specialization()
                  .withSdxl(Files.isDirectory(realInput.resolve("text_encoder_2"))));
            }
          }
          if (!staticDims.isEmpty()) {
            // Image-level sizes become this component's own dims; a dim the component lacks is not bound.
            Map<String, Long> bound = new LinkedHashMap<>(PipelineDims.forComponent(folder, staticDims, vaeFactor));
            bound.keySet().retainAll(StaticShapes.symbolicDims(model.graph()));
            componentOptions = componentOptions.withSpecialization(componentOptions.specialization().withStaticDims(bound));
          }
          String label = input.resolve(folder).resolve("model.onnx").toString();
          warnings.addAll(InputCheck.check(model, label));
          ComponentReport report = optimize(model, label, componentOptions);
          announcePrecision(options);
          PrecisionReport converted = Precision.apply(model, modelPath, folder, options.precision(), calibration);
          if (converted != null) {
            precision.put(output.path().resolve(folder).resolve("model.onnx").toString(), converted);
          }
          Path componentTarget = staging.resolve(folder).resolve("model.onnx");
          writeModel(model, componentTarget);
          reports.add(withPath(report, output.path().resolve(folder).resolve("model.onnx").toString()));
          KillPoints.reach("optimize-component-written");
        }
        if (reports.isEmpty()) {
          throw new KilnException.BadInput(input + ": the pipeline folder has no component model.onnx (looked in " + folders
              + "); nothing to optimize");
        }
        copyRest(realInput, staging, skip);
        if (!staticDims.isEmpty() || options.specialization().clipSkip() != null) {
          recordSpecialization(staging.resolve("model_index.json"), staticDims, options.specialization());
        }
        staged.commit();
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write pipeline " + output.path() + ": " + e.getMessage(), e);
    }
    return reports;
  }

  /**
   * Writes what was baked in into the staged model_index.json: the bound image size (the runner refuses any other)
   * and the clip skip of pruned encoders (the runner then reads last_hidden_state as it is).
   */
  private static void recordSpecialization(Path modelIndex, Map<String, Long> dims, Specialization specialization)
      throws IOException {
    var root = (com.fasterxml.jackson.databind.node.ObjectNode) dev.kiln.common.Json.mapper().readTree(modelIndex.toFile());
    if (!dims.isEmpty()) {
      var record = root.putObject(PipelineDims.RECORD_KEY);
      new TreeMap<>(dims).forEach(record::put);
    }
    if (specialization.clipSkip() != null && specialization.keepOutputs().isEmpty()) {
      root.put("kiln_clip_skip", specialization.clipSkip());
    }
    Files.writeString(modelIndex, dev.kiln.common.Json.mapper().writerWithDefaultPrettyPrinter().writeValueAsString(root) + "\n");
  }

  private static List<Path> filesUnder(Path folder) throws IOException {
    List<Path> files = new ArrayList<>();
    try (Stream<Path> paths = Files.walk(folder)) {
      for (Path path : (Iterable<Path>) paths::iterator) {
        if (Files.isSymbolicLink(path)) {
          files.add(path.toRealPath());
        }
      }
    }
    return files;
  }

  private static ComponentReport withPath(ComponentReport report, String path) {
    return new ComponentReport(path, report.component(), report.target(), report.nodesBefore(), report.nodesAfter(),
        report.opsBefore(), report.opsAfter(), report.rules(), report.passes(), report.wallMillis());
  }

  private static void writeModel(Model model, Path target) {
    ModelWriter.write(model, target);
  }

  private static Set<Path> externalFiles(Graph graph) {
    Set<Path> files = new HashSet<>();
    for (Value initializer : graph.initializers()) {
      if (initializer.initializer() instanceof ExternalTensor external) {
        files.add(external.file().toAbsolutePath().normalize());
      }
    }
    return files;
  }

  private static void copyRest(Path input, Path staging, Set<Path> skip) throws IOException {
    try (Stream<Path> paths = Files.walk(input)) {
      for (Path path : (Iterable<Path>) paths.sorted()::iterator) {
        Path relative = input.relativize(path);
        Path target = staging.resolve(relative.toString());
        if (Files.isDirectory(path)) {
          Files.createDirectories(target);
        } else if (!skip.contains(path.toAbsolutePath().normalize()) && !Files.exists(target)
            && !relative.toString().equals(OutputTarget.MARKER)) {
          Files.createDirectories(target.getParent());
          Files.copy(path, target);
        }
      }
    }
  }

  /** Op histogram keyed like {@code kiln inspect --json}, sorted by key. */
  public static Map<String, Integer> histogram(Graph graph) {
    Map<String, Integer> ops = new TreeMap<>();
    graph.forEachNode(node -> ops.merge(node.opType().key(), 1, Integer::sum));
    return ops;
  }
}
