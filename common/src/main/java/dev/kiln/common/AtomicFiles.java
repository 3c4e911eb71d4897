package dev.kiln.common;

import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;

/**
 * One file written to a temporary file in its folder, then renamed into place, so a crash or a bad input never
 * leaves a half-written file behind. Use it for files inside a staged output ({@link StagedFolder#path()});
 * a command's output itself goes through {@link OutputTarget}, which also checks what it may replace, never
 * replaces an input, and swaps folders and files with companions as a whole.
 */
public final class AtomicFiles {
  private AtomicFiles() {}

  /** Writes what {@code body} emits to {@code target} via a sibling temporary file and a rename. */
  public static void write(Path target, IoConsumer<OutputStream> body) {
    Path absolute = target.toAbsolutePath();
    Path folder = absolute.getParent();
    Path temporary = null;
    try {
      Files.createDirectories(folder);
      temporary = Files.createTempFile(folder, "." + absolute.getFileName() + ".", ".partial");
      try (OutputStream out = new java.io.BufferedOutputStream(Files.newOutputStream(temporary), 1 << 20)) {
        body.accept(out);
      }
      commit(temporary, absolute);
      temporary = null;
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + target + ": " + e.getMessage(), e);
    } finally {
      deleteQuietly(temporary);
    }
  }

  /** Writes bytes atomically. */
  public static void write(Path target, byte[] bytes) {
    write(target, out -> out.write(bytes));
  }

  /** Writes UTF-8 text atomically. */
  public static void writeString(Path target, String text) {
    write(target, text.getBytes(java.nio.charset.StandardCharsets.UTF_8));
  }

  /** Renames a finished temporary file into place, world-readable like an ordinary file. */
  public static void commit(Path temporary, Path target) throws IOException {
    try {
      Files.setPosixFilePermissions(temporary, PosixFilePermissions.fromString("rw-r--r--"));
    } catch (UnsupportedOperationException ignored) {
      // Not a POSIX file system; the default permissions stand.
    }
    try {
      Files.move(temporary, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    } catch (AtomicMoveNotSupportedException e) {
      Files.move(temporary, target, StandardCopyOption.REPLACE_EXISTING);
    }
  }

  public static void deleteQuietly(Path path) {
    if (path == null) {
      return;
    }
    try {
      Files.deleteIfExists(path);
    } catch (IOException ignored) {
      // Best effort: the temporary name is hidden and marked .partial.
    }
  }

  /** A consumer that may throw IOException. */
  @FunctionalInterface
  public interface IoConsumer<T> {
    void accept(T value) throws IOException;
  }
}
