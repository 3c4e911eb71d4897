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

/** {@code kiln export} end to end: the tiny TorchScript pipeline becomes an ONNX pipeline that generates the same PNG. */
class ExportCommandTest {
  static final Path ROOT = Path.of(System.getProperty("kiln.root", ".."));
  static final Path TORCHSCRIPT = ROOT.resolve("testdata/pipelines/tiny-sd-torchscript");
  static final Path ONNX = ROOT.resolve("testdata/pipelines/tiny-sd");

  @Test
  void exportedTinyPipelineGeneratesTheCommittedPipelinesImageWithinOneStep(@TempDir Path folder) throws Exception {
    // Named like the committed folder, so the PNG's "Model:" parameter is the same too.
    Path exported = folder.resolve("export").resolve("tiny-sd");
    GenerateCommandTest.Run export = GenerateCommandTest.run("export", TORCHSCRIPT.toString(), "-o", exported.toString(), "--json");
    assertEquals(0, export.exitCode(), export.err());
    JsonNode report = new ObjectMapper().readTree(export.out());
    assertEquals(4, report.get("components").size());
    assertEquals(17, report.get("opset").asInt());
    for (String copied : new String[] {"model_index.json", "scheduler/scheduler_config.json", "tokenizer/vocab.json", "unet/config.json"}) {
      assertTrue(Files.isRegularFile(exported.resolve(copied)), copied);
    }
    assertFalse(Files.exists(exported.resolve("unet/model.pt")));
    Path ours = folder.resolve("ours.png");
    Path theirs = folder.resolve("theirs.png");
    // DDIM, the demo's scheduler: its 20 steps carry the exported UNet's <= 3.3e-7 difference to the same bytes.
    // With PNDM (the pipeline's declared default, a 4th-order multistep blend) the PNGs differ (7487 vs 7479 bytes);
    // the exporter's README says so.
    String[] common = {"--prompt", "a red circle on a white background", "--seed", "0", "--steps", "20", "--scheduler", "ddim"};
    assertEquals(0, GenerateCommandTest.run(concat(new String[] {"generate", exported.toString(), "-o", ours.toString()}, common)).exitCode());
    assertEquals(0, GenerateCommandTest.run(concat(new String[] {"generate", ONNX.toString(), "-o", theirs.toString()}, common)).exitCode());
    // The runner's CPU sessions use ORT's NCHWc convolution (thread-count independent, runner/README.md); there the
    // exported UNet's <= 3.3e-7 difference may move a channel value by one step, so the images are compared value by
    // value: at most one step apart, in at most 0.5 % of the values.
    dev.kiln.runner.image.RgbImage expected = dev.kiln.runner.image.RgbImage.read(theirs);
    dev.kiln.runner.image.RgbImage actual = dev.kiln.runner.image.RgbImage.read(ours);
    assertEquals(expected.width(), actual.width());
    assertEquals(expected.height(), actual.height());
    int differing = 0;
    int largest = 0;
    for (int index = 0; index < expected.pixels().length; index++) {
      int difference = Math.abs((expected.pixels()[index] & 0xff) - (actual.pixels()[index] & 0xff));
      largest = Math.max(largest, difference);
      differing += difference == 0 ? 0 : 1;
    }
    assertTrue(largest <= 1, "largest channel difference " + largest);
    assertTrue(differing <= expected.pixels().length / 200, differing + " channel values differ");
  }

  @Test
  void refusesToReplaceAnExistingOutputWithoutOverwrite(@TempDir Path folder) throws Exception {
    Path target = folder.resolve("unet.onnx");
    Files.writeString(target, "precious");
    Path archive = TORCHSCRIPT.resolve("unet/model.pt");
    GenerateCommandTest.Run refused = GenerateCommandTest.run("export", archive.toString(), "-o", target.toString());
    assertEquals(2, refused.exitCode());
    assertEquals("kiln: -o " + target + ": a file Kiln did not write is already there; pass --overwrite to replace it", refused.err().strip());
    assertEquals("precious", Files.readString(target));
    GenerateCommandTest.Run replaced = GenerateCommandTest.run("export", archive.toString(), "-o", target.toString(), "--overwrite");
    assertEquals(0, replaced.exitCode(), replaced.err());
    assertTrue(Files.size(target) > 3_000_000);
    try (var files = Files.list(folder)) {
      assertEquals(1, files.count(), "no staging or backup left behind");
    }
  }

  @Test
  void scriptedModuleIsOneLineAndExitTwo(@TempDir Path folder) {
    Path scripted = ROOT.resolve("exporter/src/test/resources/torchscript/scripted_if.pt");
    GenerateCommandTest.Run run = GenerateCommandTest.run("export", scripted.toString(), "-o", folder.resolve("x.onnx").toString());
    assertEquals(2, run.exitCode());
    assertEquals("kiln: unsupported: scripted control flow at code/__torch__.py:8 (export a torch.jit.trace of the module, not "
        + "torch.jit.script)", run.err().strip());
  }

  private static String[] concat(String[] first, String[] second) {
    String[] all = new String[first.length + second.length];
    System.arraycopy(first, 0, all, 0, first.length);
    System.arraycopy(second, 0, all, first.length, second.length);
    return all;
  }
}
