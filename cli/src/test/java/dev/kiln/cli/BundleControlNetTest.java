package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.kiln.bundle.BundleManifest;
import dev.kiln.runner.image.PngWriter;
import dev.kiln.runner.image.RgbImage;
import dev.kiln.runner.image.ShapePlacement;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code kiln bundle} of the trained tiny ControlNet pipeline: the bundle carries controlnet/, and its bin/generate
 * (on a bare Java, as a deployed bundle runs) takes --control-image, draws exactly what kiln generate draws, and
 * puts the shape on the control.
 */
class BundleControlNetTest {
  static final Path CONTROL_PIPELINE = Path.of(System.getProperty("kiln.root", "..")).resolve("testdata/pipelines/tiny-sd-controlnet");

  @Test
  void bundlesGenerateTakesTheControlImage(@TempDir Path folder) throws Exception {
    Path bundle = folder.resolve("bundle");
    GenerateCommandTest.Run built = GenerateCommandTest.run("bundle", CONTROL_PIPELINE.toString(), "-o", bundle.toString(), "--json");
    assertEquals(0, built.exitCode(), built.err());
    JsonNode files = BundleManifest.read(bundle).get("files");
    assertTrue(files.has("controlnet/model.onnx") && files.has("controlnet/config.json"), files.toString());

    RgbImage mask = ShapePlacement.discMask(64, 44, 20, 15);
    Path control = Files.write(folder.resolve("control.png"), PngWriter.encode(mask, Map.of()));
    Path bin = Files.createDirectories(folder.resolve("path-with-java-only"));
    Files.createSymbolicLink(bin.resolve("java"), Path.of(System.getProperty("java.home"), "bin", "java"));
    Path home = Files.createDirectories(folder.resolve("home"));
    Path image = folder.resolve("bundle.png");
    BundleCommandTest.Result run = BundleCommandTest.launch(bundle, bin, home, "--prompt", BundleCommandTest.PROMPT, "--control-image",
        control.toString(), "--seed", "0", "--scheduler", "ddim", "--steps", "20", "-o", image.toString());
    assertEquals(0, run.code(), run.output());

    Path reference = folder.resolve("generate.png");
    GenerateCommandTest.Run generate = GenerateCommandTest.run("generate", CONTROL_PIPELINE.toString(), "--prompt", BundleCommandTest.PROMPT,
        "--control-image", control.toString(), "--seed", "0", "--scheduler", "ddim", "--steps", "20", "-o", reference.toString());
    assertEquals(0, generate.exitCode(), generate.err());
    assertArrayEquals(Files.readAllBytes(reference), Files.readAllBytes(image), "the bundle draws exactly what kiln generate draws");
    double distance = ShapePlacement.distance(ShapePlacement.maskCentroid(mask), ShapePlacement.shapeCentroid(RgbImage.read(image)));
    System.out.printf(java.util.Locale.ROOT, "bundle's bin/generate --control-image: shape %.2f px from the control's centroid%n", distance);
    assertTrue(distance <= 8, distance + " px");
  }
}
