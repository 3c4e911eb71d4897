package dev.kiln.optimizer;

import dev.kiln.common.KilnException;
import dev.kiln.common.PipelineLayout;
import dev.kiln.graph.ExternalTensor;
import dev.kiln.graph.Graph;
import dev.kiln.graph.Model;
import dev.kiln.graph.ModelReader;
import dev.kiln.graph.ModelWriter;
import dev.kiln.graph.Value;
import dev.kiln.graph.Verifier;
import dev.kiln.optimizer.OptimizationReport.ComponentReport;
import dev.kiln.optimizer.OptimizationReport.RuleReport;
import dev.kiln.optimizer.engine.DriverReport;
import dev.kiln.optimizer.engine.RewriteDriver;
import dev.kiln.optimizer.engine.Rule;
import dev.kiln.optimizer.engine.RuleStats;
import dev.kiln.optimizer.profiles.Component;
import dev.kiln.optimizer.profiles.Profiles;
import dev.kiln.optimizer.profiles.Target;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Comparator;
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
      PipelineLayout.UNET, Component.UNET, PipelineLayout.VAE_DECODER, Component.VAE_DECODER, PipelineLayout.VAE_ENCODER, Component.VAE_ENCODER);

  /**
   * @param component null = detect from the graph's input/output names
   * @param disabled rule or pass names to skip
   * @param verifyEachStep run the IR verifier after every sweep and pass (tests turn it on)
   * @param cudaKernelLimits refuse CUDA fusions whose sizes ORT's CUDA kernels reject at run time (default on;
   *     off only to prove the rewrites on small test graphs that no GPU would be given)
   */
  public record Options(Target target, Component component, Set<String> disabled, boolean verifyEachStep,
      boolean cudaKernelLimits) {
    public Options {
      disabled = Set.copyOf(disabled);
    }

    public static Options of(Target target) {
      return new Options(target, null, Set.of(), false, true);
    }

    public Options withComponent(Component component) {
      return new Options(target, component, disabled, verifyEachStep, cudaKernelLimits);
    }

    public Options verifying() {
      return new Options(target, component, disabled, true, cudaKernelLimits);
    }

    public Options withoutCudaKernelLimits() {
      return new Options(target, component, disabled, verifyEachStep, false);
    }
  }

  /** Optimizes {@code model} in place. */
  public static ComponentReport optimize(Model model, String label, Options options) {
    long start = System.nanoTime();
    Component component = options.component() != null ? options.component() : Component.detect(model.graph(), label);
    Profiles.Profile profile = Profiles.of(options.target(), component, options.cudaKernelLimits());
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
    for (Profiles.Step step : profile.steps()) {
      long stepStart = System.nanoTime();
      runStep(step, model, options, applied, rejected, passes);
      if (Boolean.getBoolean("kiln.debugTimings")) {
        System.err.printf("step %s: %d ms%n", step, (System.nanoTime() - stepStart) / 1_000_000);
      }
    }
    applied.forEach((name, count) -> rules.put(name, new RuleReport(count[0], rejected.getOrDefault(name, Map.of()))));
    return new ComponentReport(label, component.id(), options.target().id(), nodesBefore, model.graph().totalNodeCount(),
        opsBefore, histogram(model.graph()), rules, passes, (System.nanoTime() - start) / 1_000_000);
  }

  private static void runStep(Profiles.Step step, Model model, Options options, Map<String, int[]> applied,
      Map<String, Map<String, Integer>> rejected, Map<String, Integer> passes) {
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
    long start = System.nanoTime();
    if (!Files.exists(input)) {
      throw new KilnException.BadInput(input + ": no such file or folder");
    }
    List<ComponentReport> reports = new ArrayList<>();
    if (Files.isDirectory(input)) {
      reports.addAll(optimizeFolder(input, output, options));
    } else {
      Model model = ModelReader.read(input);
      ComponentReport report = optimize(model, input.toString(), options);
      writeModel(model, output);
      reports.add(withPath(report, output.toString()));
    }
    return new OptimizationReport(options.target().id(), reports, (System.nanoTime() - start) / 1_000_000);
  }

  private static List<ComponentReport> optimizeFolder(Path input, Path output, Options options) {
    if (!Files.isRegularFile(input.resolve("model_index.json"))) {
      throw new KilnException.BadInput(input + ": a folder must be a pipeline (model_index.json missing)");
    }
    if (input.toAbsolutePath().normalize().equals(output.toAbsolutePath().normalize())) {
      throw new KilnException.BadInput(output + ": output folder must differ from the input");
    }
    List<ComponentReport> reports = new ArrayList<>();
    Path staging = output.toAbsolutePath().resolveSibling("." + output.getFileName() + ".partial");
    try {
      deleteTree(staging);
      Files.createDirectories(staging);
      Set<Path> skip = new HashSet<>();
      List<String> folders = new ArrayList<>(PIPELINE_FOLDERS.keySet());
      folders.sort(null);
      for (String folder : folders) {
        Path modelPath = input.resolve(folder).resolve("model.onnx");
        if (!Files.isRegularFile(modelPath)) {
          continue;
        }
        Model model = ModelReader.read(modelPath);
        skip.add(modelPath.toAbsolutePath().normalize());
        skip.addAll(externalFiles(model.graph()));
        Options componentOptions = options.component() != null ? options : options.withComponent(PIPELINE_FOLDERS.get(folder));
        ComponentReport report = optimize(model, modelPath.toString(), componentOptions);
        Path target = staging.resolve(folder).resolve("model.onnx");
        writeModel(model, target);
        reports.add(withPath(report, output.resolve(folder).resolve("model.onnx").toString()));
      }
      copyRest(input, staging, skip);
      deleteTree(output);
      Files.move(staging, output, StandardCopyOption.ATOMIC_MOVE);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write pipeline " + output + ": " + e.getMessage(), e);
    } finally {
      try {
        deleteTree(staging);
      } catch (IOException ignored) {
        // Best effort; the staging folder is hidden and marked .partial.
      }
    }
    return reports;
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
        } else if (!skip.contains(path.toAbsolutePath().normalize()) && !Files.exists(target)) {
          Files.createDirectories(target.getParent());
          Files.copy(path, target);
        }
      }
    }
  }

  private static void deleteTree(Path root) throws IOException {
    if (!Files.exists(root)) {
      return;
    }
    try (Stream<Path> paths = Files.walk(root)) {
      for (Path path : (Iterable<Path>) paths.sorted(Comparator.reverseOrder())::iterator) {
        Files.delete(path);
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
