package dev.kiln.common;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Predicate;

/**
 * A file output being written, with optional companion files (an ONNX model's external data): write
 * {@link #path()} and each {@link #newCompanion()}, name the companions ({@link #commitCompanionAs}), then
 * {@link #commit()}. See {@link OutputTarget} for the rules.
 *
 * <p>Companions are renamed in first under names the current output does not use (the caller picks them,
 * e.g. from a digest of the content), then the main file in one rename, then the companions no longer named by
 * anyone ({@link #replacesCompanions}) are deleted. Killed at any moment, the main file sits beside all the
 * companions it refers to; a stale companion a kill left is deleted by the next commit.
 */
public final class StagedFile implements AutoCloseable {
  private final OutputTarget target;
  private final Path output;
  private final String nonce;
  private final Path staging;
  private final List<Path> temporaries = new ArrayList<>();
  private final Map<Path, String> companions = new LinkedHashMap<>();
  private Predicate<String> obsolete = name -> false;
  private boolean committed;

  StagedFile(OutputTarget target) {
    this.target = target;
    this.output = target.absolute();
    this.nonce = Staging.nonce();
    try {
      Files.createDirectories(output.getParent());
    } catch (IOException e) {
      throw new UncheckedIOException("cannot create " + output.getParent() + ": " + e.getMessage(), e);
    }
    Staging.cleanStale(output);
    this.staging = newTemporary();
  }

  private Path newTemporary() {
    Path temporary = output.resolveSibling(Staging.partial(output.getFileName().toString(), nonce, temporaries.size()));
    try {
      Files.createFile(temporary);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot create " + temporary + ": " + e.getMessage(), e);
    }
    temporaries.add(temporary);
    Staging.claim(temporary);
    return temporary;
  }

  /** The temporary file to write the output's content into. */
  public Path path() {
    return staging;
  }

  /** The output as the user named it. */
  public Path target() {
    return target.path();
  }

  /** A further temporary file in the output's folder, for a companion. */
  public Path newCompanion() {
    return newTemporary();
  }

  /** At commit, {@code temporary} becomes {@code finalName} beside the output, before the output itself. */
  public void commitCompanionAs(Path temporary, String finalName) {
    if (!temporaries.contains(temporary) || temporary.equals(staging)) {
      throw new IllegalArgumentException(temporary + " is not a companion of " + output);
    }
    if (finalName.contains("/") || finalName.contains("\\") || finalName.equals(output.getFileName().toString())) {
      throw new IllegalArgumentException("a companion needs a plain file name of its own, not " + finalName);
    }
    companions.put(temporary, finalName);
  }

  /**
   * File names (in the output's folder) of companions that earlier versions of this output wrote: after the
   * commit, those not just written are deleted. Inputs are never deleted.
   */
  public void replacesCompanions(Predicate<String> companionName) {
    this.obsolete = companionName;
  }

  public void commit() {
    if (committed) {
      return;
    }
    KillPoints.reach("file-written");
    Set<String> kept = new HashSet<>();
    for (Map.Entry<Path, String> companion : companions.entrySet()) {
      publish(companion.getKey(), output.resolveSibling(companion.getValue()));
      kept.add(companion.getValue());
    }
    KillPoints.reach("file-companions-committed");
    publish(staging, output);
    committed = true;
    KillPoints.reach("file-swapped");
    deleteObsolete(kept);
  }

  private static void publish(Path temporary, Path target) {
    try {
      AtomicFiles.commit(temporary, target);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + target + ": " + e.getMessage(), e);
    }
  }

  private void deleteObsolete(Set<String> kept) {
    Set<Path> protectedPaths = new HashSet<>();
    for (Path input : target.inputs()) {
      try {
        protectedPaths.add(input.toRealPath());
      } catch (IOException ignored) {
        // A missing input needs no protection.
      }
    }
    List<Path> stale = new ArrayList<>();
    try (DirectoryStream<Path> entries = Files.newDirectoryStream(output.getParent())) {
      for (Path entry : entries) {
        String name = entry.getFileName().toString();
        if (!kept.contains(name) && obsolete.test(name) && Files.isRegularFile(entry) && !protectedPaths.contains(entry.toRealPath())) {
          stale.add(entry);
        }
      }
    } catch (IOException e) {
      return; // Best effort: the next commit tries again.
    }
    stale.sort(null);
    boolean first = true;
    for (Path entry : stale) {
      Staging.deleteTree(entry);
      if (first) {
        KillPoints.reach("file-deleting-old");
      }
      first = false;
    }
  }

  @Override
  public void close() {
    // Committed temporaries were renamed away; whatever is still here was never published.
    for (Path temporary : temporaries) {
      AtomicFiles.deleteQuietly(temporary);
      Staging.release(temporary);
    }
  }
}
