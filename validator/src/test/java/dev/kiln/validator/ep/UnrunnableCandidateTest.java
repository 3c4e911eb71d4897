package dev.kiln.validator.ep;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.graph.DataType;
import dev.kiln.graph.Model;
import dev.kiln.graph.ModelWriter;
import dev.kiln.graph.OpType;
import dev.kiln.validator.Validator;
import dev.kiln.validator.report.CheckResult;
import dev.kiln.validator.report.ValidationReport;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A candidate the CPU judge cannot run is a failed check (exit 1) with ORT's reason, not bad input. */
class UnrunnableCandidateTest {
  @Test
  void anOpNoProviderImplementsFailsEpSupportAndParity(@TempDir Path folder) {
    Model model = EpSupportTest.single(OpType.microsoft("NoSuchKernel"), 17, DataType.FLOAT, new long[] {2, 4});
    Path file = folder.resolve("model.onnx");
    ModelWriter.write(model, file);
    ValidationReport report = Validator.validate(file, Validator.Options.defaults().withReference(file));
    assertEquals(1, report.exitCode());
    CheckResult ep = report.getComponents().get(0).getChecks().get(1);
    assertEquals("ep-support", ep.check());
    assertEquals("NoSuchKernel \"/block/NoSuchKernel\": no kernel for com.microsoft:NoSuchKernel on ORT's CPU provider",
        ep.message());
    CheckResult parity = report.getComponents().get(0).getChecks().get(report.getComponents().get(0).getChecks().size() - 1);
    assertEquals("parity", parity.check());
    assertFalse(parity.passed());
    assertTrue(parity.message().contains("ONNX Runtime cannot load it on CPU"), parity.message());
  }
}
