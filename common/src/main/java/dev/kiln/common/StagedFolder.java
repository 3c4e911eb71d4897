package dev.kiln.common;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A folder output being written: everything goes under {@link #path()}, then {@link #commit()} makes it the
 * output in one rename; {@link #close()} without a commit removes it. See {@link OutputTarget} for the rules.
 *
 * <p>The output {@code NAME} becomes a symbolic link to the hidden sibling {@code .NAME.kiln-PID-NONCE}: POSIX
 * renames one link over another atomically, but not one non-empty folder over another, and a link is what
 * makes "killed at any moment, the complete old or the complete new output" true for a whole folder.
 */
public final class StagedFolder implements AutoCloseable {
  private final OutputTarget target;
  private final Path output;
  private final String nonce;
  private final Path staging;
  private boolean committed;

  StagedFolder(OutputTarget target) {
    this.target = target;
    this.output = target.absolute();
    this.nonce = Staging.nonce();
    Staging.cleanStale(output);
    this.staging = output.resolveSibling(Staging.version(output.getFileName().toString(), nonce));
    Staging.claim(staging);
    try {
      Files.createDirectories(staging);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot create " + staging + ": " + e.getMessage(), e);
    }
  }

  /** The folder to write the output's content into. */
  public Path path() {
    return staging;
  }

  /** The output as the user named it. */
  public Path target() {
    return target.path();
  }

  /** Marks the staged folder as Kiln's and swaps it in as the output, atomically. */
  public void commit() {
    if (committed) {
      return;
    }
    KillPoints.reach("folder-written");
    Map<String, Object> marker = new LinkedHashMap<>();
    marker.put("producer", "kiln");
    marker.put("command", target.command());
    AtomicFiles.writeString(staging.resolve(OutputTarget.MARKER), Json.write(marker) + "\n");
    String name = output.getFileName().toString();
    String previous = Staging.currentVersion(output);
    Path link = output.resolveSibling(Staging.link(name, nonce));
    Staging.claim(link);
    boolean linked;
    try {
      Files.createSymbolicLink(link, Path.of(staging.getFileName().toString()));
      linked = true;
    } catch (IOException | UnsupportedOperationException e) {
      // A file system without links: the staged folder itself is renamed in (below), with a moment where
      // NAME is missing that the next run repairs from the moved-aside copy.
      linked = false;
    }
    KillPoints.reach("folder-linked");
    Path replaced = null;
    boolean occupied = Files.exists(output, LinkOption.NOFOLLOW_LINKS);
    if (occupied && (!linked || !Files.isSymbolicLink(output))) {
      // A real folder or file (a copied Kiln output, an empty folder, or --overwrite): rename() cannot put a
      // link over a folder, so it steps aside first; the next run puts it back if we die before the swap.
      replaced = output.resolveSibling(Staging.replaced(name, nonce));
      Staging.claim(replaced);
      Staging.move(output, replaced);
      KillPoints.reach("folder-moved-aside");
    }
    Staging.move(linked ? link : staging, output);
    committed = true;
    KillPoints.reach("folder-swapped");
    if (replaced != null) {
      Staging.deleteTree(replaced, "folder-deleting-old");
      Staging.release(replaced);
    }
    Staging.release(link);
    if (previous != null) {
      Staging.deleteTree(output.resolveSibling(previous), "folder-deleting-old");
    }
  }

  @Override
  public void close() {
    if (!committed) {
      Staging.deleteTree(staging);
    }
    Staging.release(staging);
  }
}
