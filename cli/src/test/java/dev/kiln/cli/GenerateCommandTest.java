package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.runner.image.PngText;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code kiln generate} end to end on the runner's contract pipeline: files, JSON, exit codes. */
class GenerateCommandTest {
  static final Path PIPELINE = Path.of(System.getProperty("kiln.root", "..")).resolve("runner/src/test/resources/pipelines/contract-sd");

  record Run(int exitCode, String out, String err) {}

  static Run run(String... arguments) {
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    int code = Main.execute(arguments, new PrintWriter(out, true), new PrintWriter(err, true));
    return new Run(code, out.toString(), err.toString());
  }

  @Test
  void writesPngWithParametersAndReportsJson(@TempDir Path folder) throws Exception {
    Path output = folder.resolve("cat.png");
    Run run = run("generate", PIPELINE.toString(), "--prompt", "a red circle", "--negative-prompt", "blue", "--steps", "6",
        "--seed", "7", "--scheduler", "euler-a", "-o", output.toString(), "--json");
    assertEquals(0, run.exitCode(), run.err());
    JsonNode json = new ObjectMapper().readTree(run.out());
    assertEquals(output.toAbsolutePath().toString(), json.get("outputs").get(0).asText());
    assertEquals("euler-a", json.get("scheduler").asText());
    assertEquals(6, json.get("steps").asInt());
    assertEquals(7, json.get("seed").asLong());
    assertEquals(32, json.get("width").asInt());
    assertEquals(6, json.get("timings").get("unet_step_each_ms").size());
    assertTrue(json.get("timings").get("total_ms").asDouble() > 0);
    String parameters = PngText.read(Files.readAllBytes(output)).get("parameters");
    assertEquals("a red circle\nNegative prompt: blue\nSteps: 6, Sampler: Euler a, CFG scale: 7.5, Seed: 7, Size: 32x32, Model: contract-sd, Version: kiln 0.1.0",
        parameters);
    try (var files = Files.list(folder)) {
      assertEquals(1, files.count(), "no temporary files left behind");
    }
  }

  @Test
  void sameSeedSameBytesAndBatchNaming(@TempDir Path folder) throws Exception {
    Path first = folder.resolve("a.png");
    Path second = folder.resolve("b.png");
    assertEquals(0, run("generate", PIPELINE.toString(), "--prompt", "a red circle", "--seed", "3", "--steps", "5", "-o", first.toString()).exitCode());
    assertEquals(0, run("generate", PIPELINE.toString(), "--prompt", "a red circle", "--seed", "3", "--steps", "5", "-o", second.toString()).exitCode());
    assertArrayEquals(Files.readAllBytes(first), Files.readAllBytes(second));
    Run batch = run("generate", PIPELINE.toString(), "--prompt", "a red circle", "--seed", "3", "--steps", "3", "--batch", "2",
        "-o", folder.resolve("batch.png").toString());
    assertEquals(0, batch.exitCode(), batch.err());
    assertTrue(Files.isRegularFile(folder.resolve("batch-0.png")));
    assertTrue(Files.isRegularFile(folder.resolve("batch-1.png")));
    assertTrue(batch.out().contains("timings: load"), batch.out());
  }

  @Test
  void img2imgFromAFile(@TempDir Path folder) {
    Path source = folder.resolve("source.png");
    assertEquals(0, run("generate", PIPELINE.toString(), "--prompt", "a red circle", "--seed", "1", "--steps", "4", "-o", source.toString()).exitCode());
    Run run = run("generate", PIPELINE.toString(), "--prompt", "a blue square", "--init-image", source.toString(), "--strength", "0.5",
        "--steps", "10", "--seed", "1", "-o", folder.resolve("edited.png").toString(), "--json");
    assertEquals(0, run.exitCode(), run.err());
    assertTrue(run.out().contains("\"vae_encoder_ms\""), run.out());
  }

  @Test
  void badInputExitsTwoWithOneLine(@TempDir Path folder) {
    String out = folder.resolve("x.png").toString();
    String[][] cases = {
      {"generate", folder.resolve("missing").toString(), "--prompt", "x", "-o", out},
      {"generate", PIPELINE.toString(), "--prompt", "x", "--width", "30", "-o", out},
      {"generate", PIPELINE.toString(), "--prompt", "x", "--scheduler", "heun", "-o", out},
      {"generate", PIPELINE.toString(), "--prompt", "x", "--device", "tpu", "-o", out},
      {"generate", PIPELINE.toString(), "--prompt", "x", "--steps", "0", "-o", out},
      {"generate", PIPELINE.toString(), "--prompt", "x", "--init-image", folder.resolve("none.png").toString(), "-o", out},
    };
    for (String[] arguments : cases) {
      Run run = run(arguments);
      assertEquals(2, run.exitCode(), String.join(" ", arguments));
      assertEquals(1, run.err().strip().lines().count(), run.err());
      assertTrue(run.err().startsWith("kiln: "), run.err());
    }
    assertFalse(Files.exists(folder.resolve("x.png")));
  }
}
