package dev.kiln.bundle;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.common.KilnException;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** bin/generate's hand-written option parsing and the manifest checks that run before any model is loaded. */
class BundleMainTest {
  @Test
  void parsesSeparateAndJoinedValuesAndFlags() {
    Map<String, String> options = BundleMain.parse(new String[] {"--prompt", "a cat", "--steps=3", "--skip-verify", "-o", "x.png"});
    assertEquals("a cat", options.get("--prompt"));
    assertEquals("3", options.get("--steps"));
    assertEquals("true", options.get("--skip-verify"));
    assertEquals("x.png", options.get("-o"));
  }

  @Test
  void refusesUnknownOptionsMissingValuesAndBadNumbers() {
    KilnException unknown = assertThrows(KilnException.class, () -> BundleMain.parse(new String[] {"--prompt", "x", "--stpes", "3"}));
    assertTrue(unknown.getMessage().contains("--stpes"), unknown.getMessage());
    assertEquals(2, unknown.exitCode());
    KilnException missing = assertThrows(KilnException.class, () -> BundleMain.parse(new String[] {"--prompt"}));
    assertTrue(missing.getMessage().startsWith("--prompt needs a value"), missing.getMessage());
    KilnException number = assertThrows(KilnException.class, () -> BundleMain.integer(Map.of("--steps", "many"), "--steps"));
    assertTrue(number.getMessage().contains("expected a whole number"), number.getMessage());
    assertThrows(KilnException.class, () -> BundleMain.number(Map.of("--guidance", "NaN"), "--guidance"));
  }

  @Test
  void aFolderWithoutAManifestOrWithAnotherFormatIsBadInput(@TempDir Path folder) throws Exception {
    PrintStream sink = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
    KilnException none = assertThrows(KilnException.class,
        () -> BundleMain.run(new String[] {"--bundle", folder.toString(), "--prompt", "x"}, sink, sink));
    assertTrue(none.getMessage().contains(BundleManifest.FILE), none.getMessage());
    Files.writeString(folder.resolve(BundleManifest.FILE), "{\"format\": \"kiln-bundle\", \"formatVersion\": 99, \"files\": {}}");
    KilnException version = assertThrows(KilnException.class, () -> BundleManifest.read(folder));
    assertTrue(version.getMessage().contains("format version 99"), version.getMessage());
    Files.writeString(folder.resolve(BundleManifest.FILE), "{\"format\": \"kiln-bundle\", \"formatVersion\": 1, \"files\": "
        + "{\"a.txt\": {\"size\": 1, \"sha256\": \"" + "0".repeat(64) + "\"}}}");
    KilnException missing = assertThrows(KilnException.class, () -> BundleManifest.verify(folder));
    assertTrue(missing.getMessage().contains("a.txt is listed in kiln-bundle.json but missing"), missing.getMessage());
    Files.writeString(folder.resolve("a.txt"), "b");
    KilnException changed = assertThrows(KilnException.class, () -> BundleManifest.verify(folder));
    assertTrue(changed.getMessage().contains("a.txt has sha256 3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d"),
        changed.getMessage());
  }

  /** A bundle of the tiny ControlNet pipeline (copied, with a manifest listing nothing, so run with --skip-verify). */
  static Path controlNetBundle(Path folder) throws Exception {
    Path source = Path.of(System.getProperty("kiln.root", "..")).resolve("testdata/pipelines/tiny-sd-controlnet");
    Path bundle = folder.resolve("bundle");
    try (var paths = Files.walk(source)) {
      for (Path path : paths.toList()) {
        Path target = bundle.resolve(source.relativize(path).toString());
        if (Files.isDirectory(path)) {
          Files.createDirectories(target);
        } else {
          Files.copy(path, target);
        }
      }
    }
    Files.writeString(bundle.resolve(BundleManifest.FILE), "{\"format\": \"kiln-bundle\", \"formatVersion\": 1, \"files\": {}, "
        + "\"pipeline\": {\"name\": \"tiny-sd-controlnet\"}}");
    return bundle;
  }

  @Test
  void controlImageDrivesTheBundlesOwnControlNet(@TempDir Path folder) throws Exception {
    Path bundle = controlNetBundle(folder);
    Path control = folder.resolve("control.png");
    byte[] pixels = new byte[64 * 64 * 3];
    for (int y = 8; y < 32; y++) {
      java.util.Arrays.fill(pixels, (y * 64 + 32) * 3, (y * 64 + 56) * 3, (byte) 255);
    }
    Files.write(control, dev.kiln.runner.image.PngWriter.encode(new dev.kiln.runner.image.RgbImage(64, 64, pixels), Map.of()));
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    PrintStream sink = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
    int code = BundleMain.run(new String[] {"--bundle", bundle.toString(), "--skip-verify", "--prompt", "a blue square on a black background",
        "--control-image", control.toString(), "--control-scale", "0.5", "--steps", "2", "--seed", "1", "-o",
        folder.resolve("out.png").toString(), "--json"}, new PrintStream(out, true, StandardCharsets.UTF_8), sink);
    assertEquals(0, code);
    String json = out.toString(StandardCharsets.UTF_8);
    assertTrue(json.contains("\"image\" : \"" + control.toAbsolutePath() + "\""), json);
    assertTrue(json.contains("\"scale\" : 0.5"), json);
    assertTrue(json.contains("\"controlnet\" : \"" + bundle.toAbsolutePath().normalize().resolve("controlnet/model.onnx") + "\""), json);
    assertTrue(Files.isRegularFile(folder.resolve("out.png")));
    String[][] refused = {
      {"--control-image", control.toString(), "--control-image", control.toString()},
      {"--control-scale", "2"},
      {"--control-guess-mode"},
      {"--control-image", control.toString(), "--control-scale", "-1"},
      {"--control-image", folder.resolve("none.png").toString()},
    };
    String[] messages = {"--control-image is given twice", "--control-scale applies only with --control-image",
      "--control-guess-mode applies only with --control-image", "controlScale must be a number from 0 to 10, got -1.0",
      "control image " + folder.resolve("none.png") + " does not exist"};
    for (int index = 0; index < refused.length; index++) {
      java.util.List<String> arguments = new java.util.ArrayList<>(java.util.List.of("--bundle", bundle.toString(), "--skip-verify",
          "--prompt", "x", "--steps", "2", "-o", folder.resolve("x.png").toString()));
      arguments.addAll(java.util.List.of(refused[index]));
      KilnException failure = assertThrows(KilnException.class, () -> BundleMain.run(arguments.toArray(String[]::new), sink, sink));
      assertEquals(2, failure.exitCode());
      assertTrue(failure.getMessage().startsWith(messages[index]), failure.getMessage());
    }
    assertTrue(!Files.exists(folder.resolve("x.png")));
  }
}
