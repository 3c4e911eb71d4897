package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code kiln optimize}: a pipeline folder written back in its layout, the JSON report, --explain, exit codes. */
class OptimizeCommandTest {
  private static final Path ROOT = Path.of(System.getProperty("kiln.root", ".."));
  private static final Path PIPELINE = ROOT.resolve("testdata/pipelines/sd15");
  private static final Path VAE = ROOT.resolve("testdata/fixtures/vae_decoder/opset17/model.onnx");

  @TempDir Path folder;

  @Test
  void pipelineFolderKeepsItsLayoutAndReportsEveryComponent() throws Exception {
    Path output = folder.resolve("sd15-cpu");
    Path report = folder.resolve("report.json");
    var run = InspectCommandTest.run("optimize", PIPELINE.toString(), "-o", output.toString(), "--target", "cpu",
        "--report", report.toString(), "--json");
    assertEquals(0, run.exitCode(), run.err());
    for (String file : new String[] {"model_index.json", "scheduler/scheduler_config.json", "tokenizer/vocab.json",
        "tokenizer/merges.txt", "unet/config.json", "text_encoder/model.onnx", "unet/model.onnx", "vae_decoder/model.onnx",
        "vae_encoder/model.onnx"}) {
      assertTrue(Files.isRegularFile(output.resolve(file)), file);
    }
    assertFalse(Files.exists(folder.resolve(".sd15-cpu.partial")), "no staging folder left behind");
    JsonNode json = new ObjectMapper().readTree(run.out());
    assertEquals(json, new ObjectMapper().readTree(Files.readString(report)));
    assertEquals("cpu", json.get("target").asText());
    assertEquals(4, json.get("components").size());
    for (JsonNode component : json.get("components")) {
      assertTrue(component.get("nodesAfter").asInt() < component.get("nodesBefore").asInt(), component.toString());
      assertTrue(component.has("opsBefore") && component.has("opsAfter") && component.has("rules") && component.has("wallMillis"));
      if (component.get("component").asText().equals("unet")) {
        assertEquals(22, component.get("opsAfter").get("com.microsoft:MultiHeadAttention").asInt());
        assertEquals(22, component.get("rules").get("unet-attention").get("applied").asInt());
        assertFalse(component.get("opsAfter").has("com.microsoft:GroupNorm"), "cpu never emits GroupNorm");
      }
    }
  }

  @Test
  void explainListsRulesAndTheirReasons() {
    Path output = folder.resolve("vae.onnx");
    var run = InspectCommandTest.run("optimize", VAE.toString(), "-o", output.toString(), "--target", "cpu", "--explain",
        "--disable", "vae-attention");
    assertEquals(0, run.exitCode(), run.err());
    assertFalse(run.out().contains("vae-attention"), "a disabled rule does not run: " + run.out());
    assertTrue(run.out().contains("remove-noop-reshape      applied 0"), run.out());
    assertTrue(run.out().contains("declined 70: changes rank"), run.out());
    // GroupNorm's Reshape -> Mul -> Add tail starts like a LayerNorm: a near miss, named by node.
    assertTrue(run.out().contains("near miss 30: input 0 of Mul: expected Div, found Reshape at "
        + "'/decoder/mid_block/resnets.0/norm1/Add', '/decoder/mid_block/resnets.0/norm2/Add', "
        + "'/decoder/mid_block/attentions.0/group_norm/Add' and 27 more"), run.out());
    assertTrue(Files.isRegularFile(output));
  }

  @Test
  void badInputsExitTwoWithOneLine() {
    var target = InspectCommandTest.run("optimize", VAE.toString(), "-o", folder.resolve("x.onnx").toString(), "--target", "tpu");
    assertEquals(2, target.exitCode());
    assertEquals("kiln: unknown target 'tpu'; expected cpu, cuda or tensorrt", target.err().strip());
    var rule = InspectCommandTest.run("optimize", VAE.toString(), "-o", folder.resolve("y.onnx").toString(), "--target", "cpu",
        "--disable", "no-such-rule");
    assertEquals(2, rule.exitCode());
    assertTrue(rule.err().startsWith("kiln: --disable no-such-rule: no such rule or pass in the cpu profiles"), rule.err());
    assertFalse(Files.exists(folder.resolve("y.onnx")), "nothing written on bad input");
    var missing = InspectCommandTest.run("optimize", folder.resolve("missing.onnx").toString(), "-o", folder.resolve("z.onnx").toString(),
        "--target", "cuda");
    assertEquals(2, missing.exitCode());
    assertTrue(missing.err().contains("missing.onnx: no such file or folder"), missing.err());
  }
}
