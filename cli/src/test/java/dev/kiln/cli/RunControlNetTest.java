package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.cli.GenerateCommandTest.Run;
import dev.kiln.graph.proto.OnnxProto.GraphProto;
import dev.kiln.graph.proto.OnnxProto.ModelProto;
import dev.kiln.runner.image.PngWriter;
import dev.kiln.runner.image.RgbImage;
import dev.kiln.runner.image.ShapePlacement;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code kiln run} on the trained tiny ControlNet pipeline, validation on: the TorchScript folder (exported in
 * Java) and the ONNX one each pass validation (the ControlNet, the residual UNet and their pairing) and the
 * generated shape lands on the control; a ControlNet that gives fewer residuals than its UNet takes fails
 * validation, and the run exits 1 with no image and no bundle.
 */
class RunControlNetTest {
  static final Path ROOT = Path.of(System.getProperty("kiln.root", ".."));
  static final Path ONNX = ROOT.resolve("testdata/pipelines/tiny-sd-controlnet");
  static final Path TORCHSCRIPT = ROOT.resolve("testdata/pipelines/tiny-sd-controlnet-torchscript");

  @TempDir Path folder;

  @BeforeEach
  void ownCache() {
    System.setProperty("kiln.cache", folder.resolve("cache").toString());
  }

  @AfterEach
  void forgetCache() {
    System.clearProperty("kiln.cache");
  }

  /** The control: a white disc of radius 15 at (x, y) on black, as the fixture was trained on; returns its centroid. */
  Path control(String name, double x, double y) throws Exception {
    RgbImage mask = ShapePlacement.discMask(64, x, y, 15);
    return Files.write(folder.resolve(name), PngWriter.encode(mask, Map.of()));
  }

  /** Runs kiln run with validation on and checks the stages, the validation verdict and where the shape landed. */
  void runsValidatedAndPlaces(Path pipeline, String exportStatus, double x, double y) throws Exception {
    Path control = control("control.png", x, y);
    Path output = folder.resolve("run.png");
    Run run = GenerateCommandTest.run("run", pipeline.toString(), "--prompt", ControlNetCommandTest.PROMPT, "--control-image",
        control.toString(), "--seed", "0", "--steps", "20", "--scheduler", "ddim", "--target", "cpu", "-o", output.toString(), "--json");
    assertEquals(0, run.exitCode(), run.err());
    JsonNode json = new ObjectMapper().readTree(run.out());
    JsonNode stages = json.get("stages");
    assertEquals(List.of("export", "optimize", "validate", "bundle", "generate"),
        List.of(stages.get(0).get("name").asText(), stages.get(1).get("name").asText(), stages.get(2).get("name").asText(),
            stages.get(3).get("name").asText(), stages.get(4).get("name").asText()));
    assertEquals(exportStatus, stages.get(0).get("status").asText(), stages.get(0).toString());
    assertEquals("passed", stages.get(2).get("status").asText(), stages.get(2).toString());
    // 5 components + the controlnet+unet pairing + the pipeline check: 31 checks at the one size, parity within 1e-5 of scale.
    assertTrue(stages.get(2).get("detail").asText().contains(": 31 checks passed at batch=1;height=64;width=64, worst parity "),
        stages.get(2).toString());
    assertEquals(control.toAbsolutePath().toString(), json.get("control").get("images").get(0).get("image").asText());
    assertTrue(json.get("control").get("images").get(0).get("controlnet").asText().startsWith(json.get("bundle").asText()));
    assertEquals(20, json.get("timings").get("controlnet_each_ms").size());
    double[] target = ShapePlacement.maskCentroid(RgbImage.read(control));
    double[] found = ShapePlacement.shapeCentroid(RgbImage.read(output));
    double distance = ShapePlacement.distance(target, found);
    System.out.printf(java.util.Locale.ROOT, "kiln run %s: control centroid (%.2f, %.2f), shape's (%.2f, %.2f): %.2f px; %s%n",
        pipeline.getFileName(), target[0], target[1], found[0], found[1], distance, stages.get(2).get("detail").asText());
    assertEquals(x, target[0], 0.01);
    assertEquals(y, target[1], 0.01);
    assertTrue(distance <= 8, "the shape's centroid " + java.util.Arrays.toString(found) + " is " + distance + " px from the control's");
  }

  @Test
  void torchScriptPipelineExportsValidatesAndPlacesTheShape() throws Exception {
    runsValidatedAndPlaces(TORCHSCRIPT, "done", 20, 44);
  }

  @Test
  void onnxPipelineValidatesAndPlacesTheShape() throws Exception {
    runsValidatedAndPlaces(ONNX, "not needed", 44, 20);
  }

  /** The ONNX pipeline copied with its ControlNet's last down-block output removed: 3 residuals for a UNet that takes 4. */
  Path pipelineWithShortControlNet() throws Exception {
    Path copy = folder.resolve("short-pipeline");
    try (Stream<Path> files = Files.walk(ONNX)) {
      for (Path file : files.filter(Files::isRegularFile).toList()) {
        Path relative = ONNX.relativize(file);
        if (relative.startsWith("reference")) {
          continue;
        }
        Files.createDirectories(copy.resolve(relative).getParent());
        Files.copy(file, copy.resolve(relative));
      }
    }
    Path model = copy.resolve("controlnet/model.onnx");
    ModelProto proto = ModelProto.parseFrom(Files.readAllBytes(model));
    GraphProto.Builder graph = proto.getGraph().toBuilder();
    int before = graph.getOutputCount();
    for (int index = 0; index < graph.getOutputCount(); index++) {
      if (graph.getOutput(index).getName().equals("down_block_res_samples_3")) {
        graph.removeOutput(index);
        break;
      }
    }
    assertEquals(before - 1, graph.getOutputCount());
    Files.write(model, proto.toBuilder().setGraph(graph).build().toByteArray());
    return copy;
  }

  @Test
  void aControlNetThatDisagreesWithItsUnetFailsValidationAndTheRunExitsOne() throws Exception {
    Path pipeline = pipelineWithShortControlNet();
    Path control = control("control.png", 44, 20);
    Path output = folder.resolve("short.png");
    Run run = GenerateCommandTest.run("run", pipeline.toString(), "--prompt", ControlNetCommandTest.PROMPT, "--control-image",
        control.toString(), "--seed", "0", "--steps", "2", "--target", "cpu", "-o", output.toString());
    assertEquals(1, run.exitCode(), run.out() + run.err());
    assertEquals(1, run.err().strip().lines().count(), run.err());
    System.out.println("short ControlNet: " + run.err().strip());
    assertTrue(run.err().startsWith("kiln: validation failed, no bundle and no image: "), run.err());
    assertTrue(run.err().contains("down_block_res_samples") || run.err().contains("residual"), run.err());
    assertTrue(run.out().contains("validate: FAILED"), run.out());
    assertFalse(Files.exists(output));
    try (Stream<Path> bundles = Files.list(Files.createDirectories(folder.resolve("cache").resolve("bundles")))) {
      assertEquals(0, bundles.count(), "nothing is bundled");
    }
  }
}
