package dev.kiln.optimizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.optimizer.profiles.Target;
import dev.kiln.testdata.Fixtures;
import dev.kiln.validator.EpTarget;
import dev.kiln.validator.Validator;
import dev.kiln.validator.report.CheckResult;
import dev.kiln.validator.report.ComponentReport;
import dev.kiln.validator.report.ValidationReport;
import dev.kiln.validator.shapes.SizeSpec;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Every optimizer output is judged by the validator — the gate CI runs — against the pipeline it came from:
 * structure, the target's kernels, shapes proven at every size, parity at three image sizes (cuda-profile
 * graphs through the validator's spec lowering on CPU).
 */
class OptimizedPipelinesValidateTest {
  @TempDir Path folder;

  @ParameterizedTest
  @CsvSource({"sd15,cpu", "sd15,cuda", "sdxl,cuda", "tiny-sd,cpu"})
  void theOptimizedPipelineValidatesGreenAgainstTheOriginal(String pipeline, String target) {
    Path original = Fixtures.pipeline(pipeline);
    Path optimized = folder.resolve(pipeline + "-" + target);
    Optimizer.optimize(original, optimized, Optimizer.Options.of(Target.parse(target)));
    ValidationReport report = Validator.validate(optimized, Validator.Options.defaults().withReference(original)
        .withTarget(EpTarget.parse(target)).withShapes(SizeSpec.parse("height=64,128,192;width=64")));
    assertTrue(report.isPassed(), report.firstFailure());
    ComponentReport endToEnd = report.getComponents().get(report.getComponents().size() - 1);
    assertEquals("pipeline", endToEnd.getName());
    CheckResult image = endToEnd.getChecks().get(0);
    if (target.equals("cpu")) {
      // One image with each pipeline, same prompt and seed: at most a few pixel values one step apart.
      assertTrue(((Number) image.metrics().get("psnr")).doubleValue() > 60, image.toString());
    } else {
      assertEquals(Boolean.TRUE, image.skipped(), image.toString());
    }
    for (ComponentReport component : report.getComponents().subList(0, report.getComponents().size() - 1)) {
      Map<?, ?> proof = (Map<?, ?>) component.getSummary().get("shapeProof");
      assertEquals(proof.get("sites"), proof.get("proven"), component.getName() + " " + proof);
      assertTrue(component.getChecks().stream().filter(check -> check.check().equals("parity")).count() >= 3,
          component.getName());
    }
  }
}
