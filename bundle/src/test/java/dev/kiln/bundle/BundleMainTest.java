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
}
