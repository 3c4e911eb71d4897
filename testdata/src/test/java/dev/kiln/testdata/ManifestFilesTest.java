package dev.kiln.testdata;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/** The committed fixture bytes are exactly what the generator recorded, and nothing unrecorded sits beside them. */
class ManifestFilesTest {
  private static final long FIVE_MEGABYTES = 5L * 1024 * 1024;

  @Test
  void everyRecordedFileHasItsRecordedSizeAndSha256() throws IOException {
    Path testdata = Fixtures.testdata();
    List<String> problems = new ArrayList<>();
    int checked = 0;
    for (Manifest.FileEntry entry : Fixtures.manifest().files().values()) {
      if (entry.isLink()) {
        continue;
      }
      Path path = testdata.resolve(entry.path());
      if (!Files.isRegularFile(path)) {
        problems.add(entry.path() + ": missing");
        continue;
      }
      long size = Files.size(path);
      String digest = sha256(path);
      if (size != entry.bytes() || !digest.equals(entry.sha256())) {
        problems.add(entry.path() + ": " + size + " bytes sha256 " + digest + ", manifest says " + entry.bytes()
            + " bytes sha256 " + entry.sha256());
      }
      checked++;
    }
    assertEquals(List.of(), problems);
    assertTrue(checked > 100, "only " + checked + " files recorded");
  }

  @Test
  void everyRecordedLinkIsARelativeLinkToAnExistingFixtureInsideTestdata() throws IOException {
    Path testdata = Fixtures.testdata();
    List<String> problems = new ArrayList<>();
    int links = 0;
    for (Manifest.FileEntry entry : Fixtures.manifest().files().values()) {
      if (!entry.isLink()) {
        continue;
      }
      links++;
      Path path = testdata.resolve(entry.path());
      if (!Files.isSymbolicLink(path)) {
        problems.add(entry.path() + ": not a symbolic link");
        continue;
      }
      Path target = Files.readSymbolicLink(path);
      Path resolved = path.getParent().resolve(target).normalize();
      if (!target.toString().equals(entry.link()) || target.isAbsolute()) {
        problems.add(entry.path() + " -> " + target + ", manifest says " + entry.link());
      } else if (!Files.exists(resolved) || !resolved.startsWith(testdata)) {
        problems.add(entry.path() + " -> " + resolved + " does not exist inside testdata");
      }
    }
    assertEquals(List.of(), problems);
    assertTrue(links > 50, "only " + links + " links recorded");
  }

  @Test
  void noUnrecordedFileSitsInTheGeneratedFolders() throws IOException {
    Map<String, Manifest.FileEntry> recorded = Fixtures.manifest().files();
    Path testdata = Fixtures.testdata();
    List<Path> roots = new ArrayList<>(List.of(testdata.resolve("fixtures")));
    for (String pipeline : Fixtures.manifest().json().path("pipelines").properties().stream()
        .map(Map.Entry::getKey).toList()) {
      roots.add(testdata.resolve("pipelines").resolve(pipeline));
    }
    TreeSet<String> unrecorded = new TreeSet<>();
    for (Path root : roots) {
      try (Stream<Path> walk = Files.walk(root)) {
        walk.filter(path -> Files.isRegularFile(path) || Files.isSymbolicLink(path)).forEach(path -> {
          String relative = testdata.relativize(path).toString().replace('\\', '/');
          if (!relative.equals("fixtures/manifest.json") && !recorded.containsKey(relative)) {
            unrecorded.add(relative);
          }
        });
      }
    }
    assertEquals(new TreeSet<>(), unrecorded);
  }

  @Test
  void noCommittedFileExceedsFiveMegabytes() {
    List<String> large = Fixtures.manifest().files().values().stream()
        .filter(entry -> entry.bytes() > FIVE_MEGABYTES).map(entry -> entry.path() + " " + entry.bytes()).toList();
    assertEquals(List.of(), large);
  }

  @Test
  void generatorVersionsAreRecorded() {
    Manifest manifest = Fixtures.manifest();
    assertTrue(manifest.version("torch").startsWith("1.13"), manifest.version("torch"));
    assertTrue(manifest.version("onnx").startsWith("1.12"), manifest.version("onnx"));
    assertTrue(manifest.version("numpy").matches("\\d+\\.\\d+\\.\\d+"), manifest.version("numpy"));
    assertEquals("/usr/bin/python3 testdata/generator/generate.py", manifest.json().path("command").asText());
  }

  static String sha256(Path path) throws IOException {
    try (InputStream in = Files.newInputStream(path)) {
      MessageDigest digest = MessageDigest.getInstance("SHA-256");
      byte[] buffer = new byte[1 << 16];
      for (int read; (read = in.read(buffer)) > 0; ) {
        digest.update(buffer, 0, read);
      }
      return HexFormat.of().formatHex(digest.digest());
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
