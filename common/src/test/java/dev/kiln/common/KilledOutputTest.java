package dev.kiln.common;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * kill -9 at every staging moment: a child JVM replaces output "old" by "new" and is killed (destroyForcibly)
 * where {@link KillPoints} freezes it; the output must then be exactly old or exactly new (SHA-256 of every file
 * reachable from it), and the next run must leave nothing but the output.
 */
class KilledOutputTest {
  static final String HEADER = "test-output data=";
  /** Snapshots of uninterrupted runs, by kind/tag: the same for every kill point. */
  private static final Map<String, Map<String, String>> EXPECTED = new java.util.concurrent.ConcurrentHashMap<>();

  @TempDir Path folder;

  static boolean isTestOutput(Path file) {
    try {
      return Files.readString(file).startsWith(HEADER);
    } catch (IOException e) {
      return false;
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"child-half-written", "folder-written", "folder-linked", "folder-swapped", "folder-deleting-old"})
  void folderOutputIsOldOrNewWhereverTheRunIsKilled(String point) throws Exception {
    Path output = folder.resolve("out");
    run("folder", output, "old", null);
    Map<String, String> old = snapshot(output);
    assertEquals(12 + 1, old.size(), "12 files and the marker: " + old.keySet());
    boolean paused = run("folder", output, "new", point);
    assertTrue(paused, "the child reached " + point);
    Map<String, String> after = snapshot(output);
    run("folder", output, "old", null);
    Map<String, String> expectedNew = snapshotOf("folder", "new");
    assertTrue(after.equals(old) || after.equals(expectedNew), point + " left a mix: " + after.keySet());
    if (point.equals("folder-swapped") || point.equals("folder-deleting-old")) {
      assertEquals(expectedNew, after, "after the swap the output is the new one");
    } else {
      assertEquals(old, after, "before the swap the output is the old one");
    }
    assertEquals(old, snapshot(output), "the next run wrote its own version");
    assertOnlyOutputLeft(output);
  }

  @ParameterizedTest
  @ValueSource(strings = {"file-written", "file-companions-committed", "file-swapped", "file-deleting-old"})
  void fileWithCompanionIsOldOrNewWhereverTheRunIsKilled(String point) throws Exception {
    Path output = folder.resolve("model.onnx");
    run("file", output, "old", null);
    Map<String, String> old = fileSnapshot(output);
    assertTrue(run("file", output, "new", point), "the child reached " + point);
    Map<String, String> after = fileSnapshot(output);
    Map<String, String> expectedNew = fileSnapshotOf("new");
    if (point.equals("file-swapped") || point.equals("file-deleting-old")) {
      assertEquals(expectedNew, after, point);
    } else {
      assertEquals(old, after, point);
    }
    run("file", output, "third", null);
    assertEquals(fileSnapshotOf("third"), fileSnapshot(output));
    try (Stream<Path> entries = Files.list(folder)) {
      assertEquals(List.of("model.onnx", "model.onnx.third.data"), entries.map(path -> path.getFileName().toString()).sorted().toList(),
          "the next run removed the killed run's temporaries and the companions nobody names");
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"folder-moved-aside", "folder-swapped"})
  void aRealFolderOutputMovedAsideIsPutBackOrReplaced(String point) throws Exception {
    // A Kiln output copied as a plain folder (cp -rL): it must step aside before the link can take its place.
    Path output = folder.resolve("out");
    run("folder", output, "old", null);
    Path real = output.toRealPath();
    Files.delete(output);
    Files.move(real, output);
    Map<String, String> old = snapshot(output);
    assertTrue(run("folder", output, "new", point));
    Staging.cleanStale(output);
    Map<String, String> after = snapshot(output);
    assertEquals(point.equals("folder-swapped") ? snapshotOf("folder", "new") : old, after,
        "the next run put the moved-aside output back, or it had been replaced whole");
    assertOnlyOutputLeft(output);
  }

  private void assertOnlyOutputLeft(Path output) throws IOException {
    try (Stream<Path> entries = Files.list(folder)) {
      List<String> names = entries.map(path -> path.getFileName().toString()).sorted().toList();
      String version = Staging.currentVersion(output);
      assertEquals(version == null ? List.of("out") : List.of("." + version.substring(1), "out"), names, "nothing but the output");
    }
  }

  /** The expected snapshot of version {@code tag}, written by an uninterrupted child into a fresh folder. */
  private Map<String, String> snapshotOf(String kind, String tag) throws Exception {
    Map<String, String> known = EXPECTED.get(kind + "/" + tag);
    if (known != null) {
      return known;
    }
    Path fresh = Files.createTempDirectory(folder.getParent(), "expected").resolve("out");
    run(kind, fresh, tag, null);
    Map<String, String> result = snapshot(fresh);
    Staging.deleteTree(fresh.getParent());
    EXPECTED.put(kind + "/" + tag, result);
    return result;
  }

  private Map<String, String> fileSnapshotOf(String tag) throws Exception {
    Map<String, String> known = EXPECTED.get("file/" + tag);
    if (known != null) {
      return known;
    }
    Path fresh = Files.createTempDirectory(folder.getParent(), "expected").resolve("model.onnx");
    run("file", fresh, tag, null);
    Map<String, String> result = fileSnapshot(fresh);
    Staging.deleteTree(fresh.getParent());
    EXPECTED.put("file/" + tag, result);
    return result;
  }

  /** Relative path → SHA-256 of every file reachable through the output (its link followed). */
  static Map<String, String> snapshot(Path output) throws Exception {
    Map<String, String> hashes = new TreeMap<>();
    if (!Files.exists(output)) {
      return hashes;
    }
    Path root = output.toRealPath();
    try (Stream<Path> walk = Files.walk(root)) {
      for (Path path : (Iterable<Path>) walk.filter(Files::isRegularFile).sorted()::iterator) {
        hashes.put(root.relativize(path).toString(), sha256(path));
      }
    }
    return hashes;
  }

  /** The main file's hash and the hash of the companion it names (under its name). */
  private static Map<String, String> fileSnapshot(Path output) throws Exception {
    Map<String, String> hashes = new TreeMap<>();
    String text = Files.readString(output);
    assertTrue(text.startsWith(HEADER), text);
    String companion = text.substring(HEADER.length()).strip();
    hashes.put("main", sha256(output));
    Path data = output.resolveSibling(companion);
    assertTrue(Files.isRegularFile(data), "the main file's companion " + companion + " is there");
    hashes.put(companion, sha256(data));
    return hashes;
  }

  static String sha256(Path file) throws Exception {
    return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(file)));
  }

  /** Runs {@link StagingChild}; with a pause point, kills it there and returns whether it got there. */
  private static boolean run(String kind, Path output, String tag, String pauseAt) throws Exception {
    List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xshare:auto", "-cp", System.getProperty("java.class.path")));
    if (pauseAt != null) {
      command.add("-D" + KillPoints.PROPERTY + "=" + pauseAt);
    }
    command.addAll(List.of(StagingChild.class.getName(), kind, output.toString(), tag));
    KillPoints.ChildRun child = KillPoints.runAndKillAt(command, pauseAt);
    if (pauseAt == null ? child.exitCode() != 0 : !child.paused() && child.exitCode() != 0) {
      fail("child failed with " + child.exitCode() + ": " + child.output());
    }
    return child.paused();
  }
}
