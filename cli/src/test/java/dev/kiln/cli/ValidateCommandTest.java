package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.testdata.Fixtures;
import dev.kiln.testdata.Opset;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code kiln validate}: exit 0 / 1 / 2, the JSON on stdout, report files that never overwrite silently. */
class ValidateCommandTest {
  static final Path BAKED = Fixtures.testdata().resolve("broken/sdxl_unet_baked_reshape/model.onnx");

  @Test
  void theBakedReshapeFailsStaticallyAtEveryOtherHeightWithExitOne(@TempDir Path folder) throws Exception {
    Path junit = folder.resolve("validate.xml");
    Path report = folder.resolve("validate.json");
    Path html = folder.resolve("validate.html");
    GenerateCommandTest.Run run = GenerateCommandTest.run("validate", BAKED.toString(), "--static-only",
        "--shapes", "height=32,48,64;width=32", "--junit", junit.toString(), "--report", report.toString(),
        "--html", html.toString());
    assertEquals(1, run.exitCode(), run.err());
    assertTrue(run.out().startsWith("validate: FAILED (5 checks, 2 failed, target cpu, "), run.out());
    assertTrue(run.out().contains("FAIL shapes @ batch=1 height=48 width=32: Add \"/down_blocks.1/attentions.0/Add\""), run.out());
    assertTrue(run.out().contains("Reshape \"/down_blocks.1/attentions.0/Reshape_1\" target [batch, 16, -1, 32] has constant 16"
        + " = height/2 at the traced size; holds only for latent height 32"), run.out());
    JsonNode json = new ObjectMapper().readTree(Files.readString(report));
    assertEquals(5, json.get("checks").asInt());
    assertEquals(2, json.get("failures").asInt());
    assertTrue(Files.readString(junit).contains("<testsuite name=\"model.onnx\" tests=\"5\" failures=\"2\""));
    assertTrue(Files.readString(html).contains("FAILED"));

    GenerateCommandTest.Run again = GenerateCommandTest.run("validate", BAKED.toString(), "--static-only",
        "--shapes", "height=32", "--junit", junit.toString());
    assertEquals(2, again.exitCode());
    assertEquals("kiln: --junit " + junit + ": a file Kiln did not write is already there; pass --overwrite to replace it", again.err().strip());
  }

  @Test
  void atTheTracedHeightItPassesWithExitZeroAndJson() throws Exception {
    GenerateCommandTest.Run run = GenerateCommandTest.run("validate", BAKED.toString(), "--static-only",
        "--shapes", "batch=1,2;height=32;width=32", "--json");
    assertEquals(0, run.exitCode(), run.err());
    JsonNode json = new ObjectMapper().readTree(run.out());
    assertTrue(json.get("passed").asBoolean());
    assertEquals(4, json.get("checks").asInt());
    JsonNode proof = json.get("components").get(0).get("summary").get("shapeProof");
    assertEquals(1202, proof.get("sites").asInt());
  }

  @Test
  void parityAgainstTheTestDataNextToTheModel() throws Exception {
    GenerateCommandTest.Run run = GenerateCommandTest.run("validate", Fixtures.vaeDecoder(Opset.V17).toString(), "--json");
    assertEquals(0, run.exitCode(), run.err());
    JsonNode checks = new ObjectMapper().readTree(run.out()).get("components").get(0).get("checks");
    int parity = 0;
    for (JsonNode check : checks) {
      if (check.get("check").asText().equals("parity")) {
        parity++;
        assertTrue(check.get("metrics").get("maxRelative").asDouble() < 1e-4, check.toString());
      }
    }
    assertEquals(2, parity);
  }

  @Test
  void aControlNetPipelineWhoseUnetTakesNoResidualsFailsWithExitOneNamingBoth(@TempDir Path folder) throws Exception {
    Path pair = Fixtures.controlNetPair(folder.resolve("pair"));
    GenerateCommandTest.Run good = GenerateCommandTest.run("validate", pair.toString(), "--static-only", "--shapes", "height=256");
    assertEquals(0, good.exitCode(), good.out() + good.err());
    assertTrue(good.out().contains("controlnet+unet: passed"), good.out());
    Files.delete(pair.resolve("unet/model.onnx"));
    Files.createSymbolicLink(pair.resolve("unet/model.onnx"), Fixtures.unet(Opset.V17).toAbsolutePath());
    GenerateCommandTest.Run run = GenerateCommandTest.run("validate", pair.toString(), "--static-only", "--shapes", "height=256");
    assertEquals(1, run.exitCode(), run.out() + run.err());
    assertTrue(run.out().contains("FAIL controlnet-residuals: "), run.out());
    assertTrue(run.out().contains("the UNet has no down_block_additional_residuals_K / mid_block_additional_residual inputs for"
        + " the ControlNet's 10 residual outputs"), run.out());
  }

  @Test
  void badInputIsOneLineAndExitTwo(@TempDir Path folder) throws Exception {
    GenerateCommandTest.Run missing = GenerateCommandTest.run("validate", folder.resolve("none.onnx").toString());
    assertEquals(2, missing.exitCode());
    assertEquals("kiln: " + folder.resolve("none.onnx") + ": no such file or folder", missing.err().strip());
    GenerateCommandTest.Run shapes = GenerateCommandTest.run("validate", BAKED.toString(), "--shapes", "height=abc");
    assertEquals(2, shapes.exitCode());
    assertEquals("kiln: --shapes: height needs positive whole numbers, got \"abc\"", shapes.err().strip());
    GenerateCommandTest.Run target = GenerateCommandTest.run("validate", BAKED.toString(), "--target", "tpu");
    assertEquals(2, target.exitCode());
    Path garbage = folder.resolve("garbage.onnx");
    Files.writeString(garbage, "not a model");
    GenerateCommandTest.Run bad = GenerateCommandTest.run("validate", garbage.toString());
    assertEquals(2, bad.exitCode());
    assertFalse(bad.err().contains("Exception"), bad.err());
    GenerateCommandTest.Run torch = GenerateCommandTest.run("validate", Fixtures.vaeDecoder(Opset.V17).toString(),
        "--reference", Fixtures.torchScript("vae_decoder").toString());
    assertEquals(2, torch.exitCode());
    assertTrue(torch.err().contains("a TorchScript reference needs libtorch (DJL)"), torch.err());
  }

  @Test
  void helpShowsDefaultsAndExitCodes() {
    GenerateCommandTest.Run run = GenerateCommandTest.run("validate", "--help");
    assertEquals(0, run.exitCode());
    assertTrue(run.out().contains("Exit codes:"), run.out());
    assertTrue(run.out().contains("Default: cpu"), run.out());
  }
}
