package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.testdata.Fixtures;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code kiln compare}: the quality gate's exit codes, JSON and report file (the gate itself: QualityGateTest). */
class CompareCommandTest {
  static final Path TINY = Fixtures.pipeline("tiny-sd");

  @TempDir Path folder;

  @Test
  void theTinyPipelineAgainstItselfPassesAndTheReportIsTheJson() throws Exception {
    Path report = folder.resolve("gate.json");
    GenerateCommandTest.Run run = GenerateCommandTest.run("compare", TINY.toString(), TINY.toString(), "--grid", "quick",
        "--json", "--report", report.toString());
    assertEquals(0, run.exitCode(), run.err());
    assertEquals(run.out(), Files.readString(report));
    JsonNode json = new ObjectMapper().readTree(run.out());
    assertEquals("kiln compare", json.get("producer").asText());
    assertTrue(json.get("passed").asBoolean());
    JsonNode ddim = json.get("schedulers").get(0);
    assertEquals("ddim", ddim.get("scheduler").asText());
    assertEquals(12, ddim.get("identicalImages").asInt());
    assertEquals(100.0, ddim.get("psnrMean").asDouble());
    assertEquals(100.0, ddim.get("reference").get("shape").asDouble());
    // The report is kiln's own: a second run replaces it without --overwrite; a foreign file is refused.
    Path foreign = folder.resolve("notes.json");
    Files.writeString(foreign, "{\"mine\": true}");
    GenerateCommandTest.Run refused = GenerateCommandTest.run("compare", TINY.toString(), TINY.toString(), "--grid", "quick",
        "--report", foreign.toString());
    assertEquals(2, refused.exitCode(), refused.err());
    assertEquals("{\"mine\": true}", Files.readString(foreign));
  }

  @Test
  void badInputExitsTwoWithOneLine() {
    GenerateCommandTest.Run grid = GenerateCommandTest.run("compare", TINY.toString(), TINY.toString(), "--grid", "medium");
    assertEquals(2, grid.exitCode());
    assertEquals("kiln: --grid: expected full, eval or quick, got \"medium\"", grid.err().strip());
    GenerateCommandTest.Run missing = GenerateCommandTest.run("compare", TINY.toString(), folder.resolve("nothing").toString());
    assertEquals(2, missing.exitCode());
    assertEquals(1, missing.err().lines().count(), missing.err());
    assertTrue(missing.err().contains("nothing"), missing.err());
  }
}
