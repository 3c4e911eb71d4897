package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code kiln calibrate}: the sets recorded from the tiny pipeline, written in the ONNX test-data layout and read back
 * by {@code kiln optimize --precision mixed --calibration} (parity within 1e-2 for every component); bad sizes and an
 * existing foreign output are refused.
 */
class CalibrateCommandTest {
  private static final Path TINY = Path.of(System.getProperty("kiln.root", "..")).resolve("testdata/pipelines/tiny-sd");

  @TempDir Path folder;

  @Test
  void recordsSetsThatMixedPrecisionReads() throws Exception {
    Path calibration = folder.resolve("calibration");
    var run = InspectCommandTest.run("calibrate", TINY.toString(), "-o", calibration.toString(), "--prompt", "a red circle",
        "--prompt", "a blue square on a black background", "--negative-prompt", "", "--negative-prompt", "blurry",
        "--size", "32x32", "--size", "48x32", "--smallest-seeds", "2", "--steps", "3", "--json");
    assertEquals(0, run.exitCode(), run.err());
    JsonNode report = new ObjectMapper().readTree(run.out());
    assertEquals("[\"32x32\",\"48x32\"]", report.get("sizes").toString());
    assertEquals(2, report.get("smallestSeeds").asInt());
    JsonNode unet = report.get("components").get("unet");
    // One prompt per half x (2 noises at the smallest size, 32x32, + 1 at 48x32) x first/middle/last step.
    assertEquals(9, unet.get("heldIn").asInt());
    assertEquals(9, unet.get("heldOut").asInt());
    assertEquals("[\"[2, 4, 4, 4]\",\"[2, 4, 4, 6]\"]", unet.get("inputs").get("sample").toString());
    assertEquals("[\"[1, 3, 32, 32]\",\"[1, 3, 32, 48]\"]", report.get("components").get("vae_encoder").get("inputs").get("sample").toString());
    assertTrue(Files.isRegularFile(calibration.resolve("unet/test_data_set_17/input_2.pb")));
    assertTrue(Files.isRegularFile(calibration.resolve("text_encoder/test_data_set_0/input_0.pb")));

    run = InspectCommandTest.run("optimize", TINY.toString(), "-o", folder.resolve("mixed").toString(), "--target", "cpu",
        "--precision", "mixed", "--calibration", calibration.toString(), "--json");
    assertEquals(0, run.exitCode(), run.err());
    JsonNode precision = new ObjectMapper().readTree(run.out()).get("precision");
    assertEquals(4, precision.size(), precision.toString());
    precision.forEach(component -> component.get("parity").forEach(error -> assertTrue(error.asDouble() <= 1e-2, component.toString())));
  }

  @Test
  void badSizeAndForeignOutputAreRefused() throws Exception {
    var run = InspectCommandTest.run("calibrate", TINY.toString(), "-o", folder.resolve("c").toString(), "--size", "64");
    assertEquals(2, run.exitCode());
    assertTrue(run.err().contains("--size 64: expected WIDTHxHEIGHT in pixels"), run.err());
    Files.writeString(Files.createDirectories(folder.resolve("mine")).resolve("notes.txt"), "keep me");
    run = InspectCommandTest.run("calibrate", TINY.toString(), "-o", folder.resolve("mine").toString(), "--steps", "3");
    assertEquals(2, run.exitCode());
    assertEquals("keep me", Files.readString(folder.resolve("mine/notes.txt")));
  }
}
