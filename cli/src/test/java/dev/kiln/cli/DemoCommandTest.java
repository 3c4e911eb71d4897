package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.runner.image.ShapePlacement;
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
      GenerateCommandTest.Run run = GenerateCommandTest.run("demo", "--pipeline", onnx.toString(), "--no-controlnet", "-o", output.toString(),
          "--json");
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
      assertTrue(json.get("controlnet") == null, "--no-controlnet skips the ControlNet run");
      assertFalse(Files.exists(folder.resolve("demo-controlnet.png")));
      GenerateCommandTest.Run text = GenerateCommandTest.run("demo", "--pipeline", onnx.toString(), "--no-controlnet", "-o", output.toString());
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
    // The ControlNet run: kiln run on the TorchScript tiny ControlNet pipeline, validated, the circle moved onto the control disc.
    JsonNode control = json.get("controlnet");
    Path controlled = folder.resolve("demo-controlnet.png");
    assertEquals(controlled.toAbsolutePath().toString(), control.get("outputs").get(0).asText());
    assertEquals("done", control.get("stages").get(0).get("status").asText(), control.get("stages").get(0).toString());
    assertEquals("passed", control.get("stages").get(2).get("status").asText(), control.get("stages").get(2).toString());
    assertEquals(control.get("control_image").asText(), control.get("control").get("images").get(0).get("image").asText());
    JsonNode placement = control.get("placement");
    assertEquals(44.0, placement.get("control_centroid").get(0).asDouble(), 0.01);
    assertEquals(20.0, placement.get("control_centroid").get(1).asDouble(), 0.01);
    assertTrue(placement.get("hit").asBoolean(), placement.toString());
    assertTrue(placement.get("distance_px").asDouble() >= 0 && placement.get("distance_px").asDouble() <= 8, placement.toString());
    assertTrue(placement.get("without_control").get("distance_px").asDouble() > 8, "demo.png, without control, puts it elsewhere: " + placement);
    double[] found = ShapePlacement.shapeCentroid(dev.kiln.runner.image.RgbImage.read(controlled));
    assertEquals(placement.get("shape_centroid").get(0).asDouble(), found[0], 0.01);
    assertEquals(placement.get("shape_centroid").get(1).asDouble(), found[1], 0.01);
    dev.kiln.testdata.ImageJudge.Verdict moved = dev.kiln.testdata.ImageJudge.judge(javax.imageio.ImageIO.read(controlled.toFile()));
    assertTrue(moved.shows(dev.kiln.testdata.ImageJudge.Colour.RED, dev.kiln.testdata.ImageJudge.Shape.CIRCLE), moved.toString());
  }

  @Test
  void aForeignFileWhereTheControlNetImageGoesIsRefusedBeforeAnyWork(@TempDir Path folder) throws Exception {
    Path foreign = Files.writeString(folder.resolve("demo-controlnet.png"), "the user's own file");
    System.setProperty("kiln.cache", folder.resolve("cache").toString());
    GenerateCommandTest.Run run;
    try {
      run = GenerateCommandTest.run("demo", "-o", folder.resolve("demo.png").toString());
    } finally {
      System.clearProperty("kiln.cache");
    }
    assertEquals(2, run.exitCode(), run.err());
    assertEquals(1, run.err().strip().lines().count(), run.err());
    assertTrue(run.err().contains(foreign.toString()), run.err());
    assertFalse(Files.exists(folder.resolve("demo.png")), "nothing ran");
    assertEquals("the user's own file", Files.readString(foreign));
  }

  @Test
  void controlOutputGoesBesideTheDemoImage() {
    assertEquals(Path.of("out", "demo-controlnet.png"), DemoCommand.controlOutput(Path.of("out", "demo.png")));
    assertEquals(Path.of("picture-controlnet.png"), DemoCommand.controlOutput(Path.of("picture")));
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
