package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** TorchScript handed to inspect, optimize or generate: one line pointing at kiln export, exit 2, nothing written. */
class TorchScriptInputTest {
  private static final Path ROOT = Path.of(System.getProperty("kiln.root", ".."));
  private static final Path PIPELINE = ROOT.resolve("testdata/pipelines/tiny-sd-torchscript");
  private static final Path UNET = PIPELINE.resolve("unet/model.pt");

  @TempDir Path folder;

  @Test
  void everyReadingCommandPointsAtExport() {
    String folderLine = "kiln: " + PIPELINE + ": a TorchScript pipeline (text_encoder/model.pt, no model.onnx); convert it with "
        + "'kiln export' first";
    String fileLine = "kiln: " + UNET + ": a TorchScript/PyTorch file, not an ONNX model; convert it with 'kiln export' first";
    List<List<String>> runs = List.of(
        List.of("inspect", PIPELINE.toString()),
        List.of("optimize", PIPELINE.toString(), "-o", folder.resolve("out").toString(), "--target", "cpu"),
        List.of("generate", PIPELINE.toString(), "--prompt", "a cat", "-o", folder.resolve("out.png").toString()),
        List.of("inspect", UNET.toString()),
        List.of("optimize", UNET.toString(), "-o", folder.resolve("unet.onnx").toString(), "--target", "cpu"));
    for (List<String> arguments : runs) {
      var run = InspectCommandTest.run(arguments.toArray(String[]::new));
      assertEquals(2, run.exitCode(), arguments + ": " + run.err());
      assertEquals(arguments.get(1).equals(UNET.toString()) ? fileLine : folderLine, run.err().strip(), arguments.toString());
      assertEquals("", run.out());
    }
    assertFalse(Files.exists(folder.resolve("out")));
    assertFalse(Files.exists(folder.resolve("out.png")));
  }

  @Test
  void aPipelineWithoutAnyModelIsRefusedNotReportedAsDone() throws Exception {
    Path empty = Files.createDirectories(folder.resolve("empty"));
    Files.writeString(empty.resolve("model_index.json"), "{\"_class_name\": \"OnnxStableDiffusionPipeline\"}");
    var run = InspectCommandTest.run("optimize", empty.toString(), "-o", folder.resolve("out").toString(), "--target", "cpu");
    assertEquals(2, run.exitCode());
    assertEquals("kiln: " + empty + ": the pipeline folder has no component model.onnx (looked in [controlnet, text_encoder, text_encoder_2, "
        + "unet, vae_decoder, vae_encoder]); nothing to optimize", run.err().strip());
    assertFalse(Files.exists(folder.resolve("out")), "no output and no staging left");
    try (var entries = Files.list(folder)) {
      assertEquals(1, entries.count());
    }
  }
}
