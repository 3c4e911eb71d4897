package dev.kiln.cli;

import dev.kiln.common.Json;
import dev.kiln.common.OutputTarget;
import dev.kiln.validator.quality.QualityGate;
import dev.kiln.validator.quality.QualityGrid;
import dev.kiln.validator.quality.QualityReport;
import dev.kiln.validator.quality.QualityReport.SchedulerResult;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** {@code kiln compare}: the image-quality gate of a changed tiny pipeline (int8, fp16, mixed) against its fp32 original. */
@Command(name = "compare", mixinStandardHelpOptions = true, showDefaultValues = true,
    description = {"Draw the trained tiny pipeline's judged grid (\"a {colour} {shape} on a {background} background\", "
        + "seeds 0-2, 20 steps, guidance 7.5) with REFERENCE and CANDIDATE through the runner on CPU, read colour, "
        + "shape and background in every image with the tiny pipeline's judge, and report per scheduler the scores, "
        + "their drops and the PSNR of each candidate image against the reference's. The gate passes when no "
        + "scheduler's colour or shape score drops by more than 2 points.",
        "Grids: full = the 216 images of eval_scores.json with ddim, euler and dpm++2m (648 per pipeline); "
        + "eval = the same 216 with ddim only (the evaluation itself); quick = 12 of them with ddim."},
    exitCodeListHeading = "Exit codes:%n",
    exitCodeList = {"0:the gate passed", "1:the gate failed (a score dropped by more than 2 points)",
        "2:bad input or usage (not a pipeline folder, a reference that draws no scenes, a CUDA-only candidate)"})
public final class CompareCommand implements Callable<Integer> {
  @Spec CommandSpec spec;

  @Parameters(index = "0", paramLabel = "REFERENCE", description = "The fp32 pipeline folder (testdata/pipelines/tiny-sd or one made from it).")
  Path reference;

  @Parameters(index = "1", paramLabel = "CANDIDATE", description = "The changed pipeline folder (a cpu-target `kiln optimize` output).")
  Path candidate;

  @Option(names = "--grid", defaultValue = "full", description = "full, eval or quick.")
  String grid;

  @Mixin JsonOption json;

  @Option(names = "--report", paramLabel = "F.json", description = "Write the JSON report to this file as well.")
  Path report;

  @Option(names = "--overwrite", description = "Replace a report file that already exists.")
  boolean overwrite;

  @Override
  public Integer call() {
    QualityGrid chosen = QualityGrid.parse(grid);
    OutputTarget reportTarget = null;
    if (report != null) {
      reportTarget = OutputTarget.file(report, "compare").namedBy("--report").inputs(List.of(reference, candidate)).overwrite(overwrite);
      reportTarget.check();
    }
    long start = System.nanoTime();
    QualityReport result = QualityGate.compare(reference, candidate, chosen, json.enabled());
    long elapsed = (System.nanoTime() - start) / 1_000_000;
    String text = Json.write(result);
    if (reportTarget != null) {
      reportTarget.writeString(text + "\n");
    }
    PrintWriter out = spec.commandLine().getOut();
    if (json.enabled()) {
      out.println(text);
    } else {
      printSummary(out, result, elapsed);
    }
    out.flush();
    return result.passed() ? Main.OK : Main.CHECK_FAILED;
  }

  static void printSummary(PrintWriter out, QualityReport result, long elapsedMillis) {
    out.println("compare: " + (result.passed() ? "PASSED" : "FAILED") + " (" + result.grid() + " grid: " + result.cases()
        + " images x " + result.schedulers().size() + " schedulers, " + result.width() + "x" + result.height() + ", "
        + result.steps() + " steps, guidance " + result.guidance() + "; colour and shape may drop by at most "
        + result.maximumDrop() + " points; " + elapsedMillis + " ms)");
    if (!result.candidateDrawnAs().equals("as is") || !result.referenceDrawnAs().equals("as is")) {
      out.println("  drawn: reference " + result.referenceDrawnAs() + "; candidate " + result.candidateDrawnAs());
    }
    out.println("| scheduler | colour ref -> cand | shape ref -> cand | both ref -> cand | background ref -> cand "
        + "| PSNR mean / min / pooled (dB) | identical | verdicts changed | gate |");
    out.println("|---|---|---|---|---|---|---|---|---|");
    for (SchedulerResult row : result.schedulers()) {
      out.println(String.format(Locale.ROOT, "| %s | %.2f -> %.2f | %.2f -> %.2f | %.2f -> %.2f | %.2f -> %.2f | %.2f / %.2f / %.2f | %d of %d | %d | %s |",
          row.scheduler(), row.reference().colour(), row.candidate().colour(), row.reference().shape(), row.candidate().shape(),
          row.reference().both(), row.candidate().both(), row.reference().background(), row.candidate().background(),
          row.psnrMean(), row.psnrMin(), row.psnrPooled(), row.identicalImages(), row.images(), row.changedVerdicts(),
          row.passed() ? "pass" : "FAIL"));
    }
    for (String failure : result.failures()) {
      out.println("  FAIL " + failure);
    }
  }
}
