package dev.kiln.validator.structure;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.graph.Model;
import dev.kiln.graph.ModelReader;
import dev.kiln.graph.ModelWriter;
import dev.kiln.graph.WriteOptions;
import dev.kiln.testdata.Fixtures;
import dev.kiln.testdata.Opset;
import dev.kiln.validator.Validator;
import dev.kiln.validator.report.CheckResult;
import dev.kiln.validator.report.ValidationReport;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** External weights that are missing or shorter than declared fail the structure check (exit 1), nothing runs. */
class ExternalDataCheckTest {
  @TempDir Path folder;

  private Path externalCopy() throws Exception {
    Model model = ModelReader.read(Fixtures.vaeDecoder(Opset.V17));
    Path file = folder.resolve("model.onnx");
    ModelWriter.write(model, file, WriteOptions.externalAbove(1024));
    return file;
  }

  private static Path dataFile(Path folder) throws Exception {
    try (Stream<Path> files = Files.list(folder)) {
      return files.filter(path -> !path.getFileName().toString().equals("model.onnx")).findFirst().orElseThrow();
    }
  }

  @Test
  void aTruncatedDataFileFailsTheStructureCheck() throws Exception {
    Path file = externalCopy();
    assertTrue(Validator.validate(file, Validator.Options.defaults().staticOnly(true)).isPassed());
    Path data = dataFile(folder);
    try (RandomAccessFile handle = new RandomAccessFile(data.toFile(), "rw")) {
      handle.setLength(handle.length() / 2);
    }
    ValidationReport report = Validator.validate(file, Validator.Options.defaults().staticOnly(true));
    assertFalse(report.isPassed());
    assertEquals(1, report.exitCode());
    CheckResult structure = report.getComponents().get(0).getChecks().get(0);
    assertEquals("structure", structure.check());
    assertFalse(structure.passed());
    assertTrue(structure.message().contains("external data location"), structure.message());
  }

  @Test
  void aMissingDataFileFailsTheStructureCheck() throws Exception {
    Path file = externalCopy();
    Files.delete(dataFile(folder));
    ValidationReport report = Validator.validate(file, Validator.Options.defaults().staticOnly(true));
    CheckResult structure = report.getComponents().get(0).getChecks().get(0);
    assertFalse(structure.passed());
    assertTrue(structure.message().contains("does not exist"), structure.message());
  }
}
