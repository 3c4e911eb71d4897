package dev.kiln.cli;

import dev.kiln.common.Json;
import dev.kiln.common.Printable;
import dev.kiln.common.KilnException;
import dev.kiln.common.OutputTarget;
import dev.kiln.common.Progress;
import dev.kiln.optimizer.OptimizationReport;
import dev.kiln.optimizer.Optimizer;
import dev.kiln.optimizer.specialize.Specialization;
import dev.kiln.optimizer.OptimizerListener;
import dev.kiln.optimizer.precision.PrecisionOptions;
import dev.kiln.optimizer.precision.PrecisionReport;
import dev.kiln.optimizer.quantize.Int8Options;
import dev.kiln.optimizer.quantize.Int8Report;
import dev.kiln.optimizer.profiles.Component;
import dev.kiln.optimizer.profiles.Target;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
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

/** {@code kiln optimize IN -o OUT --target cpu|cuda|tensorrt}: fuse a model or a whole pipeline folder for one EP. */
@Command(name = "optimize", mixinStandardHelpOptions = true,
    description = {"Fuse an ONNX model or a diffusers/Optimum pipeline folder for cpu, cuda or tensorrt.",
        "On a terminal, stderr shows per-component and per-step progress. With --json: the report (target, components with "
            + "nodes and ops before/after, rules, passes, wallMillis)."})
public final class OptimizeCommand implements Callable<Integer> {
  @Spec CommandSpec spec;

  @Parameters(index = "0", paramLabel = "IN", description = "A .onnx file or a pipeline folder (model_index.json).")
  Path input;

  @Option(names = {"-o", "--output"}, required = true, description = "Output .onnx file or pipeline folder (a folder "
      + "output is a link to a hidden sibling .NAME.kiln-*, swapped atomically); never an input or the working folder.")
  Path output;

  @Option(names = "--target", required = true, description = "cpu, cuda or tensorrt.")
  String target;

  @Option(names = "--component", description = "text-encoder, unet, controlnet, vae-decoder or vae-encoder. Default: detected from I/O names.")
  String component;

  @Option(names = "--disable", showDefaultValue = Visibility.NEVER, description = "Skip this rule or pass (repeatable), e.g. --disable unet-attention.")
  List<String> disabled = new ArrayList<>();

  @Option(names = "--explain", description = "Print per rule how many sites it rewrote, why the others were declined, and its near misses "
      + "(nodes the pattern started on but did not match: the first failing edge and the node names).")
  boolean explain;

  @Option(names = "--report", description = "Write the JSON report here as well.")
  Path report;

  @Mixin JsonOption json;

  @Option(names = "--overwrite", description = "Replace what is at -o/--report even when Kiln did not write it "
      + "(default: only a previous Kiln output or an empty folder is replaced; an input never is).")
  boolean overwrite;

  @Option(names = "--ignore-cuda-kernel-limits", description = "Fuse BiasSplitGelu/BiasAdd even at sizes ORT's CUDA "
      + "kernels reject at run time (only for experiments on small models).")
  boolean ignoreCudaKernelLimits;

  @Option(names = "--fold-limit", defaultValue = "1MiB", description = "Constant folding makes no tensor larger than "
      + "this and reads none larger (a weight is never copied into a new inline tensor): bytes, or with KiB/MiB/GiB "
      + "(also KB/MB/GB, read as powers of 1024). Default: ${DEFAULT-VALUE}.")
  String foldLimit;

  @Option(names = "--static", description = "Bind symbolic dims to sizes and fold every shape computation, e.g. "
      + "--static batch=1,height=64,width=64,sequence=77 (names are the graph's symbolic dims; `kiln inspect` lists "
      + "them). Default: keep every dynamic axis.")
  String staticDims;

  @Option(names = "--clip-skip", description = "Text encoders: bake in diffusers' clip skip N (0 = the final layer) and keep "
      + "only what the runner reads: SD 1.x/2.x the final LayerNorm of hidden_states[-(N+1)] as last_hidden_state; SDXL "
      + "hidden_states[-(N+2)] as last_hidden_state plus text_embeds. A pipeline folder records N; `kiln generate` "
      + "then needs no --clip-skip. Default: keep every output.")
  Integer clipSkip;

  @Option(names = "--keep-output", showDefaultValue = Visibility.NEVER, description = "Text encoders: keep only this output "
      + "(repeatable) and remove what nothing else reads. Default: every output.")
  List<String> keepOutputs = new ArrayList<>();

  @Option(names = "--precision", defaultValue = "fp32", description = "fp32 (default: no change), fp16 (every float node "
      + "that can, after fusion; weights clamped into float16's range), mixed (calibrated on ORT CPU, float32 where "
      + "values would overflow float16, verified under fp16-storage emulation) or int8 (--target cpu: calibrated "
      + "QDQ quantization for ORT's CPU int8 kernels). Default: ${DEFAULT-VALUE}.")
  String precision;

  @Option(names = "--int8-scheme", defaultValue = "hybrid", description = "--precision int8: full (int8 weights and "
      + "activations for convolutions and MatMuls), hybrid (full int8 convolutions, weights-only int8 MatMuls) or "
      + "weights (weights-only int8: smaller, not faster on ORT CPU). Default: ${DEFAULT-VALUE}.")
  String int8Scheme;

  @Option(names = "--int8-ranges", defaultValue = "minmax", description = "--precision int8: activation ranges from "
      + "calibration by minmax or percentile (99.99th, outliers saturate). Default: ${DEFAULT-VALUE}.")
  String int8Ranges;

  @Option(names = "--int8-activations", defaultValue = "uint8", description = "--precision int8: uint8 (u8s8 kernels) or "
      + "int8 (s8s8) activations. Default: ${DEFAULT-VALUE}.")
  String int8Activations;

  @Option(names = "--int8-keep-defaults", negatable = true, defaultValue = "true", fallbackValue = "true",
      description = "--precision int8: keep the sensitive layers float (time embedding, first and last conv, residual "
          + "shortcuts; --explain lists each with its reason). Default: ${DEFAULT-VALUE}.")
  boolean int8KeepDefaults = true;

  @Option(names = "--int8-layer-error", description = "--precision int8: also measure the error each candidate layer "
      + "adds quantized alone (one ORT session per layer) into the report; with the default kept layers, a layer adding "
      + "over 0.05 of an output's scale stays float too.")
  boolean int8LayerError;

  @Option(names = "--keep-io-types", negatable = true, defaultValue = "true", fallbackValue = "true",
      description = "Graph inputs and outputs stay float32 behind Casts (a drop-in for float32 callers); "
          + "--no-keep-io-types makes them float16. Default: ${DEFAULT-VALUE}.")
  boolean keepIoTypes = true;

  @Option(names = "--block-op", showDefaultValue = Visibility.NEVER, description = "Keep every node of this op float32 "
      + "(repeatable), e.g. --block-op Resize or --block-op com.microsoft:GroupNorm.")
  List<String> blockOps = new ArrayList<>();

  @Option(names = "--block-node", showDefaultValue = Visibility.NEVER, description = "Keep this node float32 "
      + "(repeatable; with --precision int8: not quantized); a name that matches no node is an error (exit 2).")
  List<String> blockNodes = new ArrayList<>();

  @Option(names = "--calibration", description = "--precision mixed or int8: a folder of test_data_set_N/input_K.pb (for a pipeline, "
      + "one such folder per component sub-folder). Default: for a pipeline folder, real inputs recorded from the runner "
      + "(prompts, UNet inputs at early/middle/late steps, final latents; odd prompts held out for verification; at the "
      + "pipeline's size capped at 32x32 latents, a non-square one and, for mixed, the smallest, twice the size multiple, "
      + "with 4 noises per prompt there; see `kiln calibrate`); for a model file, the "
      + "test_data_set_N folders next to it.")
  Path calibration;

  @Option(names = "--fp16-tolerance", defaultValue = "1e-2", description = "--precision mixed: the largest accepted "
      + "max|fp16 - fp32| / max|fp32| per output on held-out inputs. Default: ${DEFAULT-VALUE}.")
  double fp16Tolerance;

  @Override
  public Integer call() {
    PrintWriter out = spec.commandLine().getOut();
    TorchScriptInput.refuse(input);
    if (component != null && Files.isDirectory(input)) {
      throw new KilnException.BadInput("--component " + component + ": a pipeline folder's components are known from "
          + "their sub-folders; --component applies to a single .onnx file only");
    }
    OutputTarget outputTarget = Optimizer.outputTarget(input, output, overwrite);
    OutputTarget reportTarget = report == null ? null
        : OutputTarget.file(report, "optimize").namedBy("--report").recognizedBy(OutputTarget::isKilnJson)
            .inputs(input).overwrite(overwrite);
    if (Files.exists(input)) {
      outputTarget.check();
    }
    if (reportTarget != null) {
      if (report.toAbsolutePath().normalize().equals(output.toAbsolutePath().normalize())) {
        throw new KilnException.BadInput("--report " + report + ": is the -o output as well; name another file");
      }
      reportTarget.check();
    }
    Optimizer.Options options = new Optimizer.Options(Target.parse(target),
        component == null ? null : Component.parse(component), new HashSet<>(disabled), false, !ignoreCudaKernelLimits)
        .withSpecialization(Specialization.NONE.withFoldLimit(SpecializationOptions.bytes("--fold-limit", foldLimit))
            .withStaticDims(SpecializationOptions.dims("--static", staticDims)).withClipSkip(clipSkip)
            .withKeepOutputs(keepOutputs))
        .withPrecision(PrecisionOptions.of(PrecisionOptions.Mode.parse(precision), keepIoTypes, new HashSet<>(blockOps),
            new HashSet<>(blockNodes), calibration, fp16Tolerance).withInt8(int8Options()));
    if (clipSkip != null && clipSkip < 0) {
      throw new KilnException.BadInput("--clip-skip " + clipSkip + ": must be at least 0");
    }
    OptimizationReport result;
    try (Progress progress = Progress.start("optimize", 1, "steps", json.enabled())) {
      List<Path> models = Optimizer.modelsOf(input);
      OptimizerListener listener = new OptimizerListener() {
        private int started;

        @Override
        public void componentStarted(String label, Component kind, int steps) {
          started++;
          progress.restart(String.format(Locale.ROOT, "optimize %s (%d/%d)", kind.id(), started, Math.max(started, models.size())), steps);
        }

        @Override
        public void stepStarted(String step, int index, int steps) {
          progress.describe(step);
        }

        @Override
        public void stepFinished(String step, int done, int steps) {
          progress.step();
        }

        @Override
        public void precisionStarted(String mode) {
          progress.describe("precision " + mode + (mode.equals("mixed") || mode.equals("int8") ? " (calibrating and verifying on ORT)" : ""));
        }
      };
      result = Optimizer.optimize(input, outputTarget, progress.drawing() ? options.withListener(listener) : options);
    }
    for (String warning : result.warnings()) {
      spec.commandLine().getErr().println("kiln: warning: " + Printable.line(warning));
    }
    spec.commandLine().getErr().flush();
    String text = Json.write(result);
    if (report != null) {
      reportTarget.writeString(text + "\n");
    }
    if (json.enabled()) {
      out.println(text);
      out.flush();
      return parityFailed(result) ? 1 : 0;
    }
    for (OptimizationReport.ComponentReport component : result.components()) {
      out.println(String.format(Locale.ROOT, "%s (%s, %s): %d -> %d nodes in %d ms", Printable.line(component.path()), component.component(),
          component.target(), component.nodesBefore(), component.nodesAfter(), component.wallMillis()));
      StringBuilder fused = new StringBuilder();
      component.opsAfter().forEach((op, count) -> {
        if (op.startsWith("com.microsoft:") || op.equals("LayerNormalization")) {
          fused.append(fused.length() == 0 ? "  fused: " : ", ").append(Printable.name(op.replace("com.microsoft:", ""))).append('=').append(count);
        }
      });
      if (fused.length() > 0) {
        out.println(fused);
      }
      if (explain) {
        for (Map.Entry<String, OptimizationReport.RuleReport> rule : component.rules().entrySet()) {
          out.println(String.format(Locale.ROOT, "  %-24s applied %d", rule.getKey(), rule.getValue().applied()));
          rule.getValue().rejected().forEach((reason, count) ->
              out.println(String.format(Locale.ROOT, "  %-24s   declined %d: %s", "", count, Printable.line(reason))));
          rule.getValue().nearMisses().forEach((edge, nodes) ->
              out.println(String.format(Locale.ROOT, "  %-24s   near miss %d: %s at %s", "", nodes.size(), Printable.line(edge),
                  someOf(nodes))));
        }
        component.passes().forEach((pass, changes) ->
            out.println(String.format(Locale.ROOT, "  %-24s changed %d", pass, changes)));
      }
      PrecisionReport converted = result.precision().get(component.path());
      if (converted != null) {
        printPrecision(out, converted);
      }
    }
    out.flush();
    return parityFailed(result) ? 1 : 0;
  }

  /** Mixed precision could not bring an output within --fp16-tolerance: the report names the node to blame. */
  private boolean parityFailed(OptimizationReport result) {
    return result.precision().values().stream().filter(each -> each.precision().equals("mixed"))
        .flatMap(each -> each.parity().values().stream()).anyMatch(error -> !(error <= fp16Tolerance));
  }

  private Int8Options int8Options() {
    if (!int8Activations.equals("uint8") && !int8Activations.equals("int8")) {
      throw new KilnException.BadInput("--int8-activations " + int8Activations + ": expected uint8 or int8");
    }
    if (precision.equals("int8") && !target.equals("cpu")) {
      throw new KilnException.BadInput("--precision int8 --target " + target + ": int8 QDQ targets ONNX Runtime's CPU "
          + "provider; use --target cpu");
    }
    return new Int8Options(Int8Options.Scheme.parse(int8Scheme), Int8Options.RangeMethod.parse(int8Ranges),
        int8Activations.equals("int8"), int8KeepDefaults, int8LayerError);
  }

  private void printInt8(PrintWriter out, Int8Report report) {
    out.println(String.format(Locale.ROOT, "  int8 %s (%s ranges, %s activations): %d int8 nodes, %d weight-only, %d float; "
        + "%d QuantizeLinear, %d DequantizeLinear; initializers %d -> %d bytes", report.scheme(), report.ranges(),
        report.activations(), report.int8Nodes(), report.weightOnlyNodes(), report.floatNodes(), report.quantizeNodes(),
        report.dequantizeNodes(), report.bytesBefore(), report.bytesAfter()));
    out.println(String.format(Locale.ROOT, "  calibration: %s, %d set(s), parity on %s", Printable.line(report.calibration().source()),
        report.calibration().calibrationSets().size(), report.calibration().heldOut()
            ? report.calibration().heldOutSets().size() + " held-out set(s)" : "the calibration sets"));
    StringBuilder kernels = new StringBuilder();
    report.ortKernels().forEach((op, count) -> kernels.append(kernels.length() == 0 ? "" : ", ")
        .append(Printable.name(op.replace("com.microsoft:", ""))).append('=').append(count));
    out.println("  ORT CPU kernels: " + (kernels.length() == 0 ? "none" : kernels));
    report.parity().forEach((name, error) -> out.println(String.format(Locale.ROOT, "  parity %s: %.3g relative to its scale",
        Printable.quoted(name), error)));
    report.notes().forEach(note -> out.println("  note: " + Printable.line(note)));
    if (explain) {
      report.floatKept().forEach((name, layer) -> out.println(String.format(Locale.ROOT, "  float %s (%s): %s",
          Printable.quoted(name), Printable.name(layer.op()), Printable.line(layer.reason()))));
    }
    if (!report.layerErrors().isEmpty()) {
      out.println("  per-layer added error (each layer quantized alone, worst output):");
      for (Int8Report.LayerError layer : explain ? report.layerErrors() : report.layerErrors().subList(0,
          Math.min(10, report.layerErrors().size()))) {
        out.println(String.format(Locale.ROOT, "    %.3g %s %s (%s)%s", layer.addedError(), layer.treatment(),
            Printable.quoted(layer.node()), Printable.name(layer.op()), layer.keptByDefault() ? " kept float" : ""));
      }
    }
  }

  private void printPrecision(PrintWriter out, PrecisionReport converted) {
    if (converted.int8() != null) {
      printInt8(out, converted.int8());
      return;
    }
    StringBuilder line = new StringBuilder(String.format(Locale.ROOT, "  precision %s: %d float16 nodes, %d float32, %d bytes saved",
        converted.precision(), converted.float16Nodes(), converted.float32Nodes(), converted.bytesSaved()));
    if (converted.precision().equals("mixed")) {
      // Like for like: the fixed threshold decides on computing nodes, so Constants kept float32 (a normalisation's
      // scale and bias, Resize's scales) are left out of this side of the comparison.
      long decided = converted.float32().values().stream()
          .filter(node -> !node.op().equals(dev.kiln.graph.Onnx.CONSTANT.key())).count();
      line.append(String.format(Locale.ROOT, ", %d ORT sessions (%d computing nodes kept float32; a fixed 512 threshold "
          + "would keep %d", converted.sessions(), decided, converted.threshold512Count()));
      if (converted.threshold512Parity() != null) {
        line.append(String.format(Locale.ROOT, ", worst output %.3g",
            converted.threshold512Parity().values().stream().mapToDouble(Double::doubleValue).max().orElse(0)));
      }
      line.append(')');
    }
    out.println(line);
    converted.parity().forEach((name, error) -> out.println(String.format(Locale.ROOT, "  parity %s: %.3g relative to its scale%s",
        Printable.quoted(name), error, error <= fp16Tolerance ? "" : " (over --fp16-tolerance)")));
    converted.clampedValues().forEach((name, count) ->
        out.println(String.format(Locale.ROOT, "  clamped %d value(s) of %s into float16's range", count, Printable.quoted(name))));
    converted.notes().forEach(note -> out.println("  note: " + Printable.line(note)));
    if (explain) {
      converted.float32().forEach((name, node) -> out.println(String.format(Locale.ROOT, "  float32 %s (%s%s): %s", Printable.quoted(name),
          Printable.name(node.op()), node.maxAbs() == null ? "" : String.format(Locale.ROOT, ", max |x| %.4g", node.maxAbs()),
          Printable.line(node.reason()))));
    }
  }

  /** The first three node names, escaped, and how many more there are. */
  private static String someOf(List<String> nodes) {
    StringBuilder text = new StringBuilder();
    for (int i = 0; i < Math.min(3, nodes.size()); i++) {
      text.append(i == 0 ? "" : ", ").append(Printable.quoted(nodes.get(i)));
    }
    return nodes.size() > 3 ? text.append(" and ").append(nodes.size() - 3).append(" more").toString() : text.toString();
  }
}
