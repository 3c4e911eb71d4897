package dev.kiln.cli;

import dev.kiln.common.Json;
import dev.kiln.common.KilnException;
import dev.kiln.common.OutputTarget;
import dev.kiln.validator.EpTarget;
import dev.kiln.validator.Validator;
import dev.kiln.validator.parity.Tolerances;
import dev.kiln.validator.report.CheckResult;
import dev.kiln.validator.report.ComponentReport;
import dev.kiln.validator.report.Divergence;
import dev.kiln.validator.report.HtmlReport;
import dev.kiln.validator.report.JunitReport;
import dev.kiln.validator.report.ValidationReport;
import dev.kiln.validator.shapes.SizeSpec;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** {@code kiln validate}: the validator's checks on a model or pipeline folder, with CI reports. */
@Command(name = "validate", mixinStandardHelpOptions = true, showDefaultValues = true,
    description = {"Prove a model or every component of a pipeline folder before anyone runs it: structure, "
        + "EP kernels, shapes and broadcasts over every size, and numeric parity against a reference (or the "
        + "test_data_set_N folders next to the model) with the first diverging tensor."},
    exitCodeListHeading = "Exit codes:%n",
    exitCodeList = {"0:every check passed", "1:a check failed", "2:bad input or usage"})
public final class ValidateCommand implements Callable<Integer> {
  @Spec CommandSpec spec;

  @Parameters(index = "0", paramLabel = "CANDIDATE", description = "An .onnx file, a folder with model.onnx, or a pipeline folder.")
  Path candidate;

  @Option(names = "--reference", paramLabel = "REF", description = "The model or pipeline folder to compare with (components paired by folder name).")
  Path reference;

  @Option(names = "--target", defaultValue = "cpu", description = "cpu, cuda or tensorrt: whose kernels the EP check uses.")
  String target;

  @Option(names = "--shapes", paramLabel = "SPEC", description = "Sizes to check, e.g. \"batch=1,2;height=64,96,128;width=64,80\" "
      + "(image pixels for a pipeline folder, the model's own input sizes for one model; default: three sizes).")
  String shapes;

  @Option(names = "--static-only", description = "Only the checks that run nothing: structure, EP support, shapes.")
  boolean staticOnly;

  @Option(names = "--atol", description = "Absolute tolerance (default 1e-5; 1e-3 for fp16 candidates).")
  Double atol;

  @Option(names = "--rtol", description = "Tolerance relative to each output's scale (default 1e-3; 2e-2 for fp16 candidates).")
  Double rtol;

  @Option(names = "--tolerance", paramLabel = "OUT=RTOL", description = "Relative tolerance for one output (repeatable).")
  List<String> tolerance = new ArrayList<>();

  @Option(names = "--seeds", defaultValue = "1", description = "Seeded inputs per size.")
  int seeds;

  @Option(names = "--junit", paramLabel = "F", description = "Write JUnit XML (one testsuite per component).")
  Path junit;

  @Mixin JsonOption json;

  @Option(names = "--report", paramLabel = "F.json", description = "Write the JSON report to this file as well.")
  Path report;

  @Option(names = "--html", paramLabel = "F", description = "Write a self-contained HTML report.")
  Path html;

  @Option(names = "--overwrite", description = "Replace report files that already exist.")
  boolean overwrite;

  @Override
  public Integer call() {
    if (atol != null && atol < 0 || rtol != null && rtol < 0) {
      throw new KilnException.BadInput("--atol and --rtol must not be negative");
    }
    if (seeds < 1) {
      throw new KilnException.BadInput("--seeds must be at least 1");
    }
    Map<String, Double> perOutput = new LinkedHashMap<>();
    for (String entry : tolerance) {
      int equals = entry.lastIndexOf('=');
      try {
        perOutput.put(entry.substring(0, equals), Double.parseDouble(entry.substring(equals + 1)));
      } catch (RuntimeException e) {
        throw new KilnException.BadInput("--tolerance: expected OUTPUT=RTOL, got \"" + entry + "\"");
      }
    }
    // Reports follow every command's output rules: never an input, only Kiln's own files replaced without --overwrite.
    List<Path> inputs = reference == null ? List.of(candidate) : List.of(candidate, reference);
    OutputTarget reportTarget = reportTarget(report, "--report", inputs);
    OutputTarget junitTarget = reportTarget(junit, "--junit", inputs);
    OutputTarget htmlTarget = reportTarget(html, "--html", inputs);
    Validator.Options options = new Validator.Options(reference, EpTarget.parse(target), SizeSpec.parse(shapes),
        staticOnly, new Tolerances(atol, rtol, perOutput), seeds, json.enabled());
    long start = System.nanoTime();
    long cpuStart = processCpuMillis();
    ValidationReport result = Validator.validate(candidate, options);
    // Wall and process CPU: on a shared machine the second is the fair measure of the work.
    String elapsed = (System.nanoTime() - start) / 1_000_000 + " ms, " + (processCpuMillis() - cpuStart) + " ms CPU";
    String text = Json.write(result);
    if (reportTarget != null) {
      reportTarget.writeString(text + "\n");
    }
    if (junitTarget != null) {
      junitTarget.writeString(JunitReport.write(result));
    }
    if (htmlTarget != null) {
      htmlTarget.writeString(HtmlReport.write(result));
    }
    PrintWriter out = spec.commandLine().getOut();
    if (json.enabled()) {
      out.println(text);
    } else {
      printSummary(out, result, elapsed);
    }
    out.flush();
    return result.exitCode();
  }

  private static String proofLine(Object proof) {
    if (!(proof instanceof Map<?, ?> numbers)) {
      return "";
    }
    return "; shapes: " + numbers.get("sites") + " sites, " + numbers.get("proven") + " proven for every size, "
        + numbers.get("heldAtSizes") + " hold at the checked sizes, " + numbers.get("failing") + " failing, "
        + numbers.get("undecided") + " undecided";
  }

  private static long processCpuMillis() {
    return ProcessHandle.current().info().totalCpuDuration().map(java.time.Duration::toMillis).orElse(0L);
  }

  static void printSummary(PrintWriter out, ValidationReport result, String elapsed) {
    out.println("validate: " + (result.isPassed() ? "PASSED" : "FAILED") + " (" + result.getChecks() + " checks, "
        + result.getFailures() + " failed, target " + result.getTarget() + ", " + elapsed + ")");
    for (ComponentReport component : result.getComponents()) {
      long failed = component.getChecks().stream().filter(check -> !check.passed()).count();
      out.println("  " + component.getName() + ": " + (failed == 0 ? "passed" : failed + " failed") + " of "
          + component.getChecks().size() + proofLine(component.getSummary().get("shapeProof")));
      for (CheckResult check : component.getChecks()) {
        if (!check.passed()) {
          out.println("    FAIL " + check.caseName() + ": " + check.message());
        }
      }
      for (Divergence divergence : component.getDivergences()) {
        out.println("    first divergence at " + divergence.size() + ": tensor " + divergence.tensor() + " of "
            + divergence.op() + " " + divergence.node() + " (max abs " + divergence.maxAbs() + ", cosine "
            + divergence.cosine() + ")");
      }
    }
  }

  /** A report file's output target, checked before the validation runs; null when the option is not given. */
  private OutputTarget reportTarget(Path file, String option, List<Path> inputs) {
    if (file == null) {
      return null;
    }
    OutputTarget target = OutputTarget.file(file, "validate").namedBy(option).inputs(inputs).overwrite(overwrite);
    target.check();
    return target;
  }
}
