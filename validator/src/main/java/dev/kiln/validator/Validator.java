package dev.kiln.validator;

import dev.kiln.common.KilnException;
import dev.kiln.common.PipelineLayout;
import dev.kiln.common.Progress;
import dev.kiln.graph.Model;
import dev.kiln.graph.ModelReader;
import dev.kiln.graph.infer.ShapeInference;
import dev.kiln.validator.ep.EpSupport;
import dev.kiln.validator.ep.KernelTable;
import dev.kiln.validator.parity.EndToEnd;
import dev.kiln.validator.parity.Parity;
import dev.kiln.validator.parity.Tolerances;
import dev.kiln.validator.report.CheckResult;
import dev.kiln.validator.report.ComponentReport;
import dev.kiln.validator.report.ValidationReport;
import dev.kiln.validator.shapes.ControlNetPairing;
import dev.kiln.validator.shapes.InputBinding;
import dev.kiln.validator.shapes.ShapeProof;
import dev.kiln.validator.shapes.Size;
import dev.kiln.validator.shapes.SizeSpec;
import dev.kiln.validator.structure.StructureCheck;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * Proves a model, or every component of a pipeline folder, before anyone runs it: structure, EP support,
 * shapes and broadcasts over every allowed size, and — unless static only — numeric parity against a
 * reference (components paired by folder name) or the test data sets next to the model. Never depends on the
 * optimizer: it judges any model.
 */
public final class Validator {
  /** What to check and how; see {@code kiln validate --help}. */
  public record Options(Path reference, EpTarget target, SizeSpec shapes, boolean staticOnly, Tolerances tolerances,
      int seeds, boolean quiet) {
    public static Options defaults() {
      return new Options(null, EpTarget.CPU, SizeSpec.DEFAULTS, false, Tolerances.DEFAULTS, 1, true);
    }

    public Options withReference(Path path) {
      return new Options(path, target, shapes, staticOnly, tolerances, seeds, quiet);
    }

    public Options withShapes(SizeSpec spec) {
      return new Options(reference, target, spec, staticOnly, tolerances, seeds, quiet);
    }

    public Options withTarget(EpTarget value) {
      return new Options(reference, value, shapes, staticOnly, tolerances, seeds, quiet);
    }

    public Options staticOnly(boolean value) {
      return new Options(reference, target, shapes, value, tolerances, seeds, quiet);
    }

    public Options withTolerances(Tolerances value) {
      return new Options(reference, target, shapes, staticOnly, value, seeds, quiet);
    }
  }

  private Validator() {}

  public static ValidationReport validate(Path candidate, Options options) {
    if (!Files.exists(candidate)) {
      throw new KilnException.BadInput(candidate + ": no such file or folder");
    }
    if (options.reference() != null && !Files.exists(options.reference())) {
      throw new KilnException.BadInput(options.reference() + ": no such reference file or folder");
    }
    ValidationReport report = new ValidationReport(candidate.toString(),
        options.reference() == null ? null : options.reference().toString(), options.target().label());
    Map<String, Path> components = components(candidate);
    boolean pipeline = Files.isDirectory(candidate) && !(components.size() == 1 && components.containsKey(""));
    Map<String, Path> references = options.reference() == null ? Map.of() : components(options.reference());
    try (Progress progress = Progress.start("validate", components.size(), "models", options.quiet())) {
      for (Map.Entry<String, Path> entry : components.entrySet()) {
        Path reference = null;
        if (options.reference() != null) {
          reference = pipeline ? references.get(entry.getKey()) : references.values().stream().findFirst().orElse(null);
          if (reference == null) {
            throw new KilnException.BadInput(options.reference() + ": no component " + Names.quote(entry.getKey())
                + " to pair with " + entry.getValue());
          }
        }
        report.getComponents().add(component(entry.getKey().isEmpty() ? entry.getValue().getFileName().toString()
            : entry.getKey(), entry.getValue(), reference, pipeline, options));
        progress.step();
      }
    }
    if (pipeline && components.containsKey(PipelineLayout.CONTROLNET) && components.containsKey(PipelineLayout.UNET)) {
      report.getComponents().add(ControlNetPairing.check(components.get(PipelineLayout.CONTROLNET),
          components.get(PipelineLayout.UNET), options.shapes(), true));
    }
    if (pipeline && options.reference() != null && !options.staticOnly() && Files.isDirectory(options.reference())) {
      report.getComponents().add(endToEnd(candidate, options));
    }
    return report;
  }

  /**
   * One image with each pipeline, compared by PSNR, at the smallest requested image size (64 by default: the
   * judgement is about the graphs, not the picture, and it stays quick).
   */
  private static ComponentReport endToEnd(Path candidate, Options options) {
    ComponentReport report = new ComponentReport("pipeline", candidate.toString(), "pipeline", options.reference().toString());
    int size = 64;
    for (String key : List.of("height", "width")) {
      if (options.shapes().has(key)) {
        size = (int) Math.max(size, options.shapes().get(key).stream().mapToLong(Long::longValue).min().orElse(64));
      }
    }
    try {
      report.add(EndToEnd.run(candidate, options.reference(), size));
    } catch (KilnException.Unsupported e) {
      report.add(CheckResult.fail("end-to-end", null, "image", e.getMessage(), null));
    }
    return report;
  }

  /** The model files to check: a file itself, a folder's model.onnx, or each component folder's. */
  static Map<String, Path> components(Path path) {
    Map<String, Path> models = new LinkedHashMap<>();
    if (Files.isRegularFile(path)) {
      models.put("", path);
      return models;
    }
    if (Files.isRegularFile(path.resolve("model.onnx"))) {
      models.put("", path.resolve("model.onnx"));
      return models;
    }
    List<Path> folders = new ArrayList<>();
    try (Stream<Path> entries = Files.list(path)) {
      entries.filter(Files::isDirectory).sorted().forEach(folders::add);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    for (Path folder : folders) {
      for (String name : List.of("model.onnx", "model.pt")) {
        if (Files.isRegularFile(folder.resolve(name))) {
          models.put(folder.getFileName().toString(), folder.resolve(name));
          break;
        }
      }
    }
    if (models.isEmpty()) {
      throw new KilnException.BadInput(path + ": neither an .onnx file nor a folder with model.onnx or component folders holding one");
    }
    return models;
  }

  private static ComponentReport component(String name, Path file, Path reference, boolean pipeline, Options options) {
    Model model;
    if (file.getFileName().toString().endsWith(".pt")) {
      throw new KilnException.BadInput(file + ": the candidate must be ONNX (TorchScript is only accepted as a reference)");
    }
    try {
      model = ModelReader.read(file);
    } catch (KilnException.BadInput e) {
      if (e.getMessage() != null && e.getMessage().contains("external data")) {
        ComponentReport broken = new ComponentReport(name, file.toString(), null, null);
        broken.add(CheckResult.fail("structure", null, null, e.getMessage(), null));
        return broken;
      }
      throw e;
    }
    ComponentKind kind = ComponentKind.of(model);
    ComponentReport report = new ComponentReport(name, file.toString(), kind.label(),
        reference == null ? null : reference.toString());
    List<String> structure = StructureCheck.check(model);
    report.add(structure.isEmpty()
        ? CheckResult.pass("structure", null, null, "verifier, opset domains and external data hold", null)
        : CheckResult.fail("structure", null, null, String.join("; ", first(structure, 10)),
            Map.of("problems", structure.size())));

    InputBinding binding = new InputBinding(model, kind, pipeline);
    Map<String, String> refused = new LinkedHashMap<>();
    List<Size> sizes = binding.sizes(options.shapes(), refused);

    ShapeInference types = ShapeInference.of(model, binding.symbolicInputs());
    EpSupport.Result support = EpSupport.check(model, types, options.target());
    Map<String, Object> epNumbers = new LinkedHashMap<>();
    epNumbers.put("nodes", support.nodes());
    epNumbers.put("ortTable", KernelTable.get().ortVersion());
    epNumbers.put("ortRuntime", KernelTable.runtimeVersion());
    epNumbers.put("cpuFallbacks", support.notes().size());
    String versionNote = KernelTable.get().versionNote(KernelTable.runtimeVersion());
    if (versionNote != null) {
      epNumbers.put("versionNote", versionNote);
    }
    report.add(support.passed()
        ? CheckResult.pass("ep-support", null, null, support.nodes() + " nodes have " + options.target().label()
            + " kernels (ORT " + KernelTable.get().ortVersion() + " table)"
            + (support.notes().isEmpty() ? "" : "; " + support.notes().size() + " run on the CPU provider: "
            + String.join("; ", first(support.notes(), 3))), epNumbers)
        : CheckResult.fail("ep-support", null, null, String.join("; ", first(support.errors(), 10)), epNumbers));

    ShapeProof.Result proof = ShapeProof.run(model, binding, types, sizes, refused);
    Map<String, Object> proofNumbers = new LinkedHashMap<>();
    proofNumbers.put("sites", proof.sites());
    proofNumbers.put("proven", proof.proven());
    proofNumbers.put("heldAtSizes", proof.heldAtSizes());
    proofNumbers.put("failing", proof.failing());
    proofNumbers.put("undecided", proof.undecided());
    report.getSummary().put("shapeProof", proofNumbers);
    report.getSummary().put("outputShapes", ShapeProof.outputShapes(model, types));
    refused.forEach((label, problem) -> report.add(CheckResult.fail("shapes", label, null, problem, null)));
    for (ShapeProof.SizeResult size : proof.sizes()) {
      if (size.passed()) {
        report.add(CheckResult.pass("shapes", size.size().label(), null, proof.sites() + " sites hold ("
            + proof.proven() + " proven for every size)", null));
      } else {
        report.add(CheckResult.fail("shapes", size.size().label(), null, size.message(), null));
      }
    }
    if (!options.staticOnly()) {
      try {
        Parity.run(report, file, reference, binding, sizes,
            new Parity.Options(Math.max(1, options.seeds()), options.tolerances(), true));
      } catch (KilnException.Unsupported e) {
        // The judge cannot run the candidate on CPU (no lowering for an op, ORT refuses the graph): a failed
        // check of this component, not bad input.
        report.add(CheckResult.fail("parity", null, null, e.getMessage(), null));
      }
    }
    return report;
  }

  private static List<String> first(List<String> items, int count) {
    if (items.size() <= count) {
      return items;
    }
    List<String> shown = new ArrayList<>(items.subList(0, count));
    shown.add("and " + (items.size() - count) + " more");
    return shown;
  }
}
