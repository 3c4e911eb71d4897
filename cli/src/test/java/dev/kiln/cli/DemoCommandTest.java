package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code kiln demo}: explicit stages (the validator judging the optimized pipeline), a real PNG. */
class DemoCommandTest {
  @Test
  void reportsStagesAndWritesThePng(@TempDir Path folder) throws Exception {
    System.setProperty("kiln.cache", folder.resolve("cache").toString());
    try {
      Path output = folder.resolve("demo.png");
      // The ONNX tiny pipeline: export is not needed, every other stage runs.
      Path onnx = Path.of(System.getProperty("kiln.root", "..")).resolve("testdata/pipelines/tiny-sd");
      GenerateCommandTest.Run run = GenerateCommandTest.run("demo", "--pipeline", onnx.toString(), "-o", output.toString(), "--json");
      assertEquals(0, run.exitCode(), run.err());
      JsonNode json = new ObjectMapper().readTree(run.out());
      assertEquals(output.toAbsolutePath().toString(), json.get("outputs").get(0).asText());
      assertEquals("a red circle on a white background", json.get("prompt").asText());
      assertEquals(5, json.get("stages").size());
      assertEquals("export", json.get("stages").get(0).get("name").asText());
      assertEquals("not needed", json.get("stages").get(0).get("status").asText());
      assertEquals("optimize", json.get("stages").get(1).get("name").asText());
      assertEquals("validate", json.get("stages").get(2).get("name").asText());
      assertEquals("passed", json.get("stages").get(2).get("status").asText(), json.get("stages").get(2).toString());
      assertTrue(json.get("stages").get(2).get("detail").asText().startsWith("cpu profile vs the source: "),
          json.get("stages").get(2).toString());
      assertEquals("bundle", json.get("stages").get(3).get("name").asText());
      assertEquals("built", json.get("stages").get(3).get("status").asText());
      assertEquals("generate", json.get("stages").get(4).get("name").asText());
      assertEquals("done", json.get("stages").get(4).get("status").asText());
      assertEquals(20, json.get("timings").get("unet_step_each_ms").size());
      assertTrue(Files.size(output) > 100);
      GenerateCommandTest.Run text = GenerateCommandTest.run("demo", "--pipeline", onnx.toString(), "-o", output.toString());
      assertTrue(text.out().contains("optimize: cached"), text.out());
      assertTrue(text.out().contains("bundle:   reused"), text.out());
      assertTrue(text.out().contains("generate: done"), text.out());
    } finally {
      System.clearProperty("kiln.cache");
    }
  }

  /** The real demo: the bundled trained tiny pipeline draws what the prompt says, judged by the image judge. */
  @Test
  void bundledDemoDrawsARedCircleOnWhite(@TempDir Path folder) throws Exception {
    Path output = folder.resolve("demo.png");
    System.setProperty("kiln.cache", folder.resolve("cache").toString());
    GenerateCommandTest.Run run;
    try {
      run = GenerateCommandTest.run("demo", "-o", output.toString(), "--json");
    } finally {
      System.clearProperty("kiln.cache");
    }
    assertEquals(0, run.exitCode(), run.err());
    JsonNode json = new ObjectMapper().readTree(run.out());
    assertEquals(output.toAbsolutePath().toString(), json.get("outputs").get(0).asText());
    assertEquals("done", json.get("stages").get(0).get("status").asText(), "the demo exports its TorchScript pipeline");
    dev.kiln.testdata.ImageJudge.Verdict verdict = dev.kiln.testdata.ImageJudge.judge(javax.imageio.ImageIO.read(output.toFile()));
    assertTrue(verdict.shows(dev.kiln.testdata.ImageJudge.Colour.RED, dev.kiln.testdata.ImageJudge.Shape.CIRCLE), verdict.toString());
    assertEquals(dev.kiln.testdata.ImageJudge.Background.WHITE, verdict.background());
  }

  @Test
  void findsTheBundledPipelineOrSaysWhereItLooked() {
    Path root = Path.of(System.getProperty("kiln.root", ".."));
    if (Files.isDirectory(root.resolve(DemoCommand.PIPELINE))) {
      assertEquals(root.resolve(DemoCommand.PIPELINE).toAbsolutePath().normalize(), DemoCommand.bundledPipeline().toAbsolutePath().normalize());
    } else {
      GenerateCommandTest.Run run = GenerateCommandTest.run("demo");
      assertEquals(2, run.exitCode());
      assertTrue(run.err().contains(DemoCommand.PIPELINE), run.err());
    }
  }
}
