package dev.kiln.common;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ScratchFolderTest {
  @TempDir Path parent;

  @Test
  void aKilledRunsFolderIsRemovedByTheNextRunOfItsKindOnly() throws Exception {
    Process ended = new ProcessBuilder("true").start();
    ended.waitFor();
    long deadPid = ended.pid();
    Path killed = Files.createDirectories(parent.resolve("kiln-precision-" + deadPid + "-123"));
    Files.writeString(killed.resolve("weights.bin"), "left by a killed search");
    Path running = Files.createDirectories(parent.resolve("kiln-precision-" + ProcessHandle.current().pid() + "-456"));
    Path otherKind = Files.createDirectories(parent.resolve("kiln-int8-" + deadPid + "-789"));
    Path unrelated = Files.createDirectories(parent.resolve("kiln-precision-notapid-1"));

    Path made;
    try (ScratchFolder scratch = ScratchFolder.create(parent, "kiln-precision-")) {
      made = scratch.path();
      assertTrue(Files.isDirectory(made));
      assertTrue(made.getFileName().toString().startsWith("kiln-precision-" + ProcessHandle.current().pid() + "-"));
      assertFalse(Files.exists(killed), "the ended process's folder is taken back");
      assertTrue(Files.isDirectory(running), "a live process's folder stays");
      assertTrue(Files.isDirectory(otherKind), "another kind's folder is left to its own kind");
      assertTrue(Files.isDirectory(unrelated));
      Files.writeString(made.resolve("candidate.bin"), "x");
    }
    assertFalse(Files.exists(made), "closing deletes the run's own folder");
  }

  @Test
  void linksInsideAreRemovedNotFollowed() throws Exception {
    Path outside = Files.createDirectories(parent.resolve("user-data"));
    Files.writeString(outside.resolve("keep.txt"), "mine");
    Path made;
    try (ScratchFolder scratch = ScratchFolder.create(parent, "kiln-test-")) {
      made = scratch.path();
      Files.createSymbolicLink(made.resolve("link"), outside);
    }
    assertFalse(Files.exists(made));
    assertTrue(Files.isRegularFile(outside.resolve("keep.txt")));
  }
}
