package dev.kiln.exporter;

import dev.kiln.common.KilnException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.BasicFileAttributes;

/**
 * Where an export is written before it is committed: a hidden sibling {@code .NAME.partial} folder, renamed onto
 * the output at the end, so a killed export leaves the old output or the new one, never a mix. An existing output
 * is only replaced with {@code overwrite}. The one place the exporter stages (to switch to common's staging API).
 */
final class StagedOutput implements AutoCloseable {
  private final Path output;
  private final Path staging;
  private final boolean overwrite;
  private boolean committed;

  StagedOutput(Path output, boolean overwrite) {
    this.output = output.toAbsolutePath().normalize();
    this.staging = this.output.resolveSibling("." + this.output.getFileName() + ".partial");
    this.overwrite = overwrite;
    if (Files.exists(this.output) && !overwrite) {
      throw new KilnException.BadInput(output + ": already exists (pass --overwrite to replace it)");
    }
    try {
      // A staging folder left by a killed run is ours (hidden, .partial): clear it.
      deleteTree(staging);
      Files.createDirectories(staging);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot create " + staging + ": " + e.getMessage(), e);
    }
  }

  /** The staged path of a file or folder that will end up at {@code relative} under the output. */
  Path resolve(String relative) {
    return staging.resolve(relative);
  }

  Path root() {
    return staging;
  }

  /** Puts the staged tree at the output path: for a single file, the staged file named like the output. */
  void commit(boolean singleFile) {
    try {
      if (singleFile && !overwrite) {
        // The data file lands beside the model: an unrelated file of that name is not ours to replace.
        try (var files = Files.list(staging)) {
          for (Path file : files.toList()) {
            Path target = output.resolveSibling(file.getFileName());
            if (Files.exists(target)) {
              throw new KilnException.BadInput(target + ": already exists (pass --overwrite to replace it)");
            }
          }
        }
      }
      Path old = null;
      if (Files.exists(output)) {
        if (!overwrite) {
          throw new KilnException.BadInput(output + ": appeared while exporting (pass --overwrite to replace it)");
        }
        old = output.resolveSibling("." + output.getFileName() + ".old");
        deleteTree(old);
        move(output, old);
      }
      if (singleFile) {
        // The model and its data file sit side by side in the staging folder; move each into place, data first.
        try (var files = Files.list(staging)) {
          for (Path file : files.sorted((a, b) -> a.getFileName().toString().endsWith(".data") ? -1 : 1).toList()) {
            move(file, output.resolveSibling(file.getFileName()));
          }
        }
      } else {
        move(staging, output);
      }
      committed = true;
      deleteTree(old);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + output + ": " + e.getMessage(), e);
    }
  }

  @Override
  public void close() {
    try {
      deleteTree(staging);
    } catch (IOException ignored) {
      // Best effort: the folder is hidden and marked .partial; the next run clears it.
    }
  }

  boolean committed() {
    return committed;
  }

  private static void move(Path from, Path to) throws IOException {
    try {
      Files.move(from, to, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    } catch (AtomicMoveNotSupportedException e) {
      Files.move(from, to, StandardCopyOption.REPLACE_EXISTING);
    }
  }

  static void deleteTree(Path root) throws IOException {
    if (root == null || !Files.exists(root)) {
      return;
    }
    Files.walkFileTree(root, new SimpleFileVisitor<>() {
      @Override
      public FileVisitResult visitFile(Path file, BasicFileAttributes attributes) throws IOException {
        Files.delete(file);
        return FileVisitResult.CONTINUE;
      }

      @Override
      public FileVisitResult postVisitDirectory(Path directory, IOException error) throws IOException {
        Files.delete(directory);
        return FileVisitResult.CONTINUE;
      }
    });
  }
}
