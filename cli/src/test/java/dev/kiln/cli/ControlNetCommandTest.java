package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.cli.GenerateCommandTest.Run;
import dev.kiln.graph.proto.OnnxProto.GraphProto;
import dev.kiln.graph.proto.OnnxProto.ModelProto;
import dev.kiln.runner.image.PngText;
import dev.kiln.runner.image.PngWriter;
import dev.kiln.runner.image.RgbImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code kiln generate} and {@code kiln run} with ControlNet flags on the tiny ControlNet pipeline: the control
 * inputs in --json and the PNG, repeatable images, scales and ControlNets, same seed same bytes, and every bad
 * control input refused with one line naming the file or flag (exit 2).
 */
class ControlNetCommandTest {
  static final Path ROOT = Path.of(System.getProperty("kiln.root", ".."));
  static final Path CONTROL_PIPELINE = ROOT.resolve("testdata/pipelines/tiny-sd-controlnet");
  static final Path PLAIN_PIPELINE = ROOT.resolve("testdata/pipelines/tiny-sd");
  static final String PROMPT = "a red circle on a white background";

  @TempDir Path folder;

  @AfterEach
  void forgetCache() {
    System.clearProperty("kiln.cache");
  }

  /** A 64x64 control image: black, a white filled disc of radius 15 at (x, y). */
  static Path disc(Path file, int centreX, int centreY) throws IOException {
    byte[] pixels = new byte[64 * 64 * 3];
    for (int y = 0; y < 64; y++) {
      for (int x = 0; x < 64; x++) {
        if ((x + 0.5 - centreX) * (x + 0.5 - centreX) + (y + 0.5 - centreY) * (y + 0.5 - centreY) <= 15 * 15) {
          java.util.Arrays.fill(pixels, (y * 64 + x) * 3, (y * 64 + x) * 3 + 3, (byte) 255);
        }
      }
    }
    Files.write(file, PngWriter.encode(new RgbImage(64, 64, pixels), Map.of()));
    return file;
  }

  @Test
  void generateWithControlReportsTheControlInputsAndRepeatsBytes() throws Exception {
    Path control = disc(folder.resolve("left.png"), 18, 40);
    Path first = folder.resolve("first.png");
    Run run = GenerateCommandTest.run("generate", CONTROL_PIPELINE.toString(), "--prompt", PROMPT, "--control-image", control.toString(),
        "--control-scale", "0.75", "--seed", "3", "--steps", "6", "--scheduler", "ddim", "-o", first.toString(), "--json");
    assertEquals(0, run.exitCode(), run.err());
    JsonNode json = new ObjectMapper().readTree(run.out());
    JsonNode image = json.get("control").get("images").get(0);
    assertEquals(control.toAbsolutePath().toString(), image.get("image").asText());
    assertEquals(0.75, image.get("scale").asDouble());
    assertEquals(CONTROL_PIPELINE.resolve("controlnet/model.onnx").toAbsolutePath().normalize().toString(), image.get("controlnet").asText());
    assertFalse(json.get("control").get("guess_mode").asBoolean());
    assertEquals(6, json.get("timings").get("controlnet_each_ms").size());
    assertEquals(64, json.get("width").asInt());
    String parameters = PngText.read(Files.readAllBytes(first)).get("parameters");
    assertTrue(parameters.contains(", ControlNet 0: \"Model: controlnet, Weight: 0.75, Resize Mode: Just Resize, Guess Mode: False\""),
        parameters);

    Path second = folder.resolve("second.png");
    Run again = GenerateCommandTest.run("generate", CONTROL_PIPELINE.toString(), "--prompt", PROMPT, "--control-image", control.toString(),
        "--control-scale", "0.75", "--seed", "3", "--steps", "6", "--scheduler", "ddim", "-o", second.toString());
    assertEquals(0, again.exitCode(), again.err());
    assertTrue(again.out().contains("control: " + control + " x 0.75 -> "), again.out());
    assertArrayEquals(Files.readAllBytes(first), Files.readAllBytes(second));

    Path without = folder.resolve("without.png");
    assertEquals(0, GenerateCommandTest.run("generate", CONTROL_PIPELINE.toString(), "--prompt", PROMPT, "--seed", "3", "--steps", "6",
        "--scheduler", "ddim", "-o", without.toString()).exitCode());
    assertFalse(java.util.Arrays.equals(Files.readAllBytes(first), Files.readAllBytes(without)), "the control image is used");
  }

  @Test
  void repeatedImagesScalesAndControlNetsWithGuessModeAndBatch() throws Exception {
    Path left = disc(folder.resolve("left.png"), 18, 40);
    Path right = disc(folder.resolve("right.png"), 46, 20);
    Run run = GenerateCommandTest.run("generate", CONTROL_PIPELINE.toString(), "--prompt", PROMPT, "--control-image", left.toString(),
        "--control-image", right.toString(), "--controlnet", CONTROL_PIPELINE.resolve("controlnet").toString(), "--control-scale", "0.5",
        "--control-guess-mode", "--batch", "2", "--seed", "1", "--steps", "4", "-o", folder.resolve("pair.png").toString(), "--json");
    assertEquals(0, run.exitCode(), run.err());
    JsonNode control = new ObjectMapper().readTree(run.out()).get("control");
    assertTrue(control.get("guess_mode").asBoolean());
    assertEquals(2, control.get("images").size());
    for (JsonNode image : control.get("images")) {
      assertEquals(0.5, image.get("scale").asDouble(), "one scale applies to all");
    }
    assertEquals(right.toAbsolutePath().toString(), control.get("images").get(1).get("image").asText());
    assertTrue(Files.isRegularFile(folder.resolve("pair-0.png")));
    assertTrue(Files.isRegularFile(folder.resolve("pair-1.png")));
    Run scales = GenerateCommandTest.run("generate", CONTROL_PIPELINE.toString(), "--prompt", PROMPT, "--control-image", left.toString(),
        "--control-image", right.toString(), "--controlnet", CONTROL_PIPELINE.resolve("controlnet").toString(), "--control-scale", "0.5",
        "--control-scale", "1.5", "--seed", "1", "--steps", "2", "-o", folder.resolve("scales.png").toString(), "--json");
    assertEquals(0, scales.exitCode(), scales.err());
    JsonNode images = new ObjectMapper().readTree(scales.out()).get("control").get("images");
    assertEquals(1.5, images.get(1).get("scale").asDouble());
  }

  /** The ControlNet with its last down-block output removed from the graph's outputs: 3 residuals for a UNet that takes 4. */
  Path shortControlNet() throws IOException {
    ModelProto model = ModelProto.parseFrom(Files.readAllBytes(CONTROL_PIPELINE.resolve("controlnet/model.onnx")));
    GraphProto.Builder graph = model.getGraph().toBuilder();
    for (int index = 0; index < graph.getOutputCount(); index++) {
      if (graph.getOutput(index).getName().equals("down_block_res_samples_3")) {
        graph.removeOutput(index);
        break;
      }
    }
    Path short3 = Files.createDirectories(folder.resolve("short-controlnet"));
    Files.write(short3.resolve("model.onnx"), model.toBuilder().setGraph(graph).build().toByteArray());
    return short3;
  }

  @Test
  void badControlInputsExitTwoWithOneLineNamingIt() throws Exception {
    Path control = disc(folder.resolve("left.png"), 18, 40);
    Path text = Files.writeString(folder.resolve("notes.png"), "not an image");
    Path shortNet = shortControlNet();
    String out = folder.resolve("x.png").toString();
    String pipeline = CONTROL_PIPELINE.toString();
    String image = control.toString();
    Object[][] cases = {
      {new String[] {"--control-image", folder.resolve("none.png").toString()}, "kiln: control image " + folder.resolve("none.png") + " does not exist"},
      {new String[] {"--control-image", text.toString()}, "kiln: control image " + text + " is not a PNG, JPEG or BMP image"},
      {new String[] {"--control-image", image, "--control-scale", "NaN"}, "kiln: --control-scale must be a number from 0 to 10, got NaN (for " + image + ")"},
      {new String[] {"--control-image", image, "--control-scale", "-1"}, "kiln: --control-scale must be a number from 0 to 10, got -1.0 (for " + image + ")"},
      {new String[] {"--control-image", image, "--control-scale", "1e9"}, "kiln: --control-scale must be a number from 0 to 10, got 1.0E9 (for " + image + ")"},
      {new String[] {"--control-image", image, "--control-scale", "1", "--control-scale", "2"}, "kiln: --control-scale is given 2 times for 1 --control-image"},
      {new String[] {"--control-scale", "1"}, "kiln: --control-scale applies only with --control-image"},
      {new String[] {"--control-guess-mode"}, "kiln: --control-guess-mode applies only with --control-image"},
      {new String[] {"--control-image", image, "--control-image", image}, "kiln: --control-image must give one control image per ControlNet: 1 ControlNet"},
      {new String[] {"--control-image", image, "--control-image", image, "--controlnet", shortNet.toString()},
          "kiln: controlnet model " + shortNet.resolve("model.onnx") + " gives 3 down-block residuals but the unet takes 4"},
      {new String[] {"--control-image", image, "--control-image", image, "--controlnet", CONTROL_PIPELINE.resolve("unet").toString()},
          "kiln: controlnet model " + CONTROL_PIPELINE.resolve("unet").resolve("model.onnx") + " has no 'controlnet_cond' input"},
      {new String[] {"--control-image", image, "--control-image", image, "--controlnet", folder.resolve("nothing").toString()},
          "kiln: --controlnet " + folder.resolve("nothing") + " has no model.onnx"},
    };
    for (Object[] entry : cases) {
      List<String> arguments = new ArrayList<>(List.of("generate", pipeline, "--prompt", "x", "--steps", "2", "-o", out));
      arguments.addAll(List.of((String[]) entry[0]));
      Run run = GenerateCommandTest.run(arguments.toArray(String[]::new));
      String what = String.join(" ", (String[]) entry[0]);
      assertEquals(2, run.exitCode(), what + ": " + run.err());
      assertEquals(1, run.err().strip().lines().count(), what + ": " + run.err());
      assertTrue(run.err().startsWith((String) entry[1]), what + ": " + run.err());
    }
    Run plain = GenerateCommandTest.run("generate", PLAIN_PIPELINE.toString(), "--prompt", "x", "--steps", "2", "-o", out, "--control-image", image);
    assertEquals(2, plain.exitCode());
    assertTrue(plain.err().startsWith("kiln: --control-image needs a ControlNet: pipeline " + PLAIN_PIPELINE.toAbsolutePath().normalize()
        + " has no controlnet/model.onnx"), plain.err());
    assertFalse(Files.exists(folder.resolve("x.png")));
  }

  @Test
  void runTakesTheSameControlFlags() throws Exception {
    Path control = disc(folder.resolve("left.png"), 18, 40);
    System.setProperty("kiln.cache", folder.resolve("cache").toString());
    // Refused before anything is built.
    Run bad = GenerateCommandTest.run("run", CONTROL_PIPELINE.toString(), "--prompt", "x", "--control-image", control.toString(),
        "--control-scale", "-2", "-o", folder.resolve("x.png").toString());
    assertEquals(2, bad.exitCode(), bad.err());
    assertTrue(bad.err().startsWith("kiln: --control-scale must be a number from 0 to 10, got -2.0"), bad.err());
    assertFalse(Files.exists(folder.resolve("cache").resolve("bundles")));
    Run run = GenerateCommandTest.run("run", CONTROL_PIPELINE.toString(), "--prompt", PROMPT, "--control-image", control.toString(),
        "--seed", "2", "--steps", "4", "--target", "cpu", "--no-validate", "-o", folder.resolve("run.png").toString(), "--json");
    assertEquals(0, run.exitCode(), run.err());
    JsonNode json = new ObjectMapper().readTree(run.out());
    JsonNode image = json.get("control").get("images").get(0);
    assertEquals(control.toAbsolutePath().toString(), image.get("image").asText());
    assertTrue(image.get("controlnet").asText().endsWith("controlnet/model.onnx"), image.toString());
    assertTrue(image.get("controlnet").asText().startsWith(json.get("bundle").asText()), "the bundle carries the ControlNet: " + image);
    assertTrue(Files.isRegularFile(folder.resolve("run.png")));
    String help = GenerateCommandTest.run("run", "--help").out();
    for (String flag : new String[] {"--control-image=FILE", "--control-scale=S", "--control-guess-mode", "--controlnet=DIR"}) {
      assertTrue(help.contains(flag), flag + " in:\n" + help);
      assertTrue(GenerateCommandTest.run("generate", "--help").out().contains(flag), flag);
    }
  }
}
