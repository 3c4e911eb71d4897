package dev.kiln.common;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;

/**
 * A temporary working folder of one run ({@code <prefix><pid>-<random>}): the mixed-precision search's weight copies,
 * int8 calibration graphs, the validator's and the quality gate's proof graphs. The run deletes it when it ends, also
 * on Ctrl-C or SIGTERM (a shutdown hook). A run killed outright cannot, and a killed full-size mixed search leaves
 * gigabytes (its float32 and float16 weight files), so creating a folder first removes the folders of the same prefix
 * whose process no longer runs: each run takes back what killed runs of its kind left. A folder whose process id now
 * belongs to another live process is kept (deleting what may be in use is worse than a leftover).
 */
public final class ScratchFolder implements AutoCloseable {
  private final Path path;
  private final Thread hook;

  private ScratchFolder(Path path) {
    this.path = path;
    this.hook = new Thread(() -> deleteTree(path), "kiln-scratch-cleanup");
    try {
      Runtime.getRuntime().addShutdownHook(hook);
    } catch (IllegalStateException shuttingDown) {
      // The JVM is already exiting: nothing to register.
    }
  }

  /** A new folder {@code kiln-<purpose>-<pid>-…} in the system's temporary folder. */
  public static ScratchFolder create(String purpose) {
    return create(Path.of(System.getProperty("java.io.tmpdir")), "kiln-" + purpose + "-");
  }

  /** A new folder {@code <prefix><pid>-…} in {@code parent}, after removing those of ended processes. */
  public static ScratchFolder create(Path parent, String prefix) {
    removeDead(parent, prefix);
    try {
      Files.createDirectories(parent);
      return new ScratchFolder(Files.createTempDirectory(parent, prefix + ProcessHandle.current().pid() + "-"));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  public Path path() {
    return path;
  }

  @Override
  public void close() {
    deleteTree(path);
    try {
      Runtime.getRuntime().removeShutdownHook(hook);
    } catch (IllegalStateException shuttingDown) {
      // The hook is running or about to: it deletes the same folder.
    }
  }

  /** Removes the folders {@code <prefix><pid>-…} in {@code parent} whose process has ended. */
  public static void removeDead(Path parent, String prefix) {
    if (!Files.isDirectory(parent)) {
      return;
    }
    try (Stream<Path> entries = Files.list(parent)) {
      for (Path entry : entries.toList()) {
        String name = entry.getFileName().toString();
        if (!name.startsWith(prefix) || !Files.isDirectory(entry, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
          continue;
        }
        String pid = name.substring(prefix.length()).split("-", 2)[0];
        if (!pid.isEmpty() && pid.length() < 19 && pid.chars().allMatch(Character::isDigit)
            && !ProcessHandle.of(Long.parseLong(pid)).map(ProcessHandle::isAlive).orElse(false)) {
          deleteTree(entry);
        }
      }
    } catch (IOException | UncheckedIOException e) {
      // Only leftovers: the run does not depend on removing them.
    }
  }

  /** Deletes {@code root} and everything under it, quietly (links are removed, never followed). */
  public static void deleteTree(Path root) {
    try (Stream<Path> paths = Files.walk(root)) {
      paths.sorted(Comparator.reverseOrder()).forEach(AtomicFiles::deleteQuietly);
    } catch (IOException | UncheckedIOException e) {
      // A leftover in a temporary folder is harmless; the next run of its kind removes it.
    }
  }
}
