package dev.kiln.common;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.function.Predicate;
import java.util.stream.Stream;

/**
 * Where a command writes its output, and the rules for what may be there already. Every command that writes
 * (optimize, generate, export, bundle, validate reports) goes through this class:
 *
 * <pre>{@code
 * OutputTarget target = OutputTarget.folder(out, "optimize").inputs(in).overwrite(overwriteFlag);
 * target.check();                                   // early: before any long work
 * try (StagedFolder staged = target.stageFolder()) {
 *   ... write everything under staged.path() ...
 *   staged.commit();                                // one atomic swap; close() without commit discards it
 * }
 *
 * OutputTarget.file(png, "generate").recognizedBy(PngOutput::isKilnPng).overwrite(flag).write(bytes);
 * }</pre>
 *
 * <p>The rules ({@link #check()}, exit code 2 when broken, before anything is written):
 *
 * <ul>
 *   <li>the output may never be an input, lie inside one or contain one (real paths, symbolic links resolved);
 *   <li>the output may never be the working folder or a folder above it ({@code -o .});
 *   <li>something already at the output is replaced only when it is a previous Kiln output (a folder Kiln made,
 *       marked by {@value #MARKER}, or a file the {@link #recognizedBy recognizer} knows), an empty folder, or the
 *       user passed {@code --overwrite}.
 * </ul>
 *
 * <p>Replacing is atomic as a whole. A folder output is a symbolic link {@code NAME -> .NAME.kiln-PID-NONCE}
 * to a hidden sibling folder, and a new version is swapped in by renaming a new link over the old one: killed at
 * any moment, {@code NAME} shows the complete old or the complete new folder. A file output is renamed into
 * place; its companion files (an ONNX data file) get names of their own (e.g. a content digest), are renamed in
 * first and the stale ones deleted after, so the main file always sits beside the companions it names.
 * Everything staged carries {@code .NAME.kiln-PID-...} names; what a dead process left is removed by the next
 * run that writes the same output.
 */
public final class OutputTarget {
  /** The file inside every folder output that marks it as Kiln's. */
  public static final String MARKER = ".kiln-output.json";

  /** Whether a folder or a single file is written. */
  public enum Kind {
    FOLDER,
    FILE
  }

  private final Path path;
  private final Kind kind;
  private final String command;
  private final List<Path> inputs;
  private final boolean overwrite;
  private final Predicate<Path> recognizer;
  private final String option;

  private OutputTarget(Path path, Kind kind, String command, List<Path> inputs, boolean overwrite, Predicate<Path> recognizer,
      String option) {
    this.option = option;
    this.path = path;
    this.kind = kind;
    this.command = command;
    this.inputs = List.copyOf(inputs);
    this.overwrite = overwrite;
    this.recognizer = recognizer;
  }

  /** A folder output of {@code command} (the marker records it). */
  public static OutputTarget folder(Path path, String command) {
    return new OutputTarget(path, Kind.FOLDER, command, List.of(), false, file -> false, "-o");
  }

  /** A single-file output; without {@link #recognizedBy} an existing file is replaced only with --overwrite. */
  public static OutputTarget file(Path path, String command) {
    return new OutputTarget(path, Kind.FILE, command, List.of(), false, file -> false, "-o");
  }

  /** Adds files or folders the command reads: the output may not be, contain or lie inside any of them. */
  public OutputTarget inputs(Path... more) {
    return inputs(List.of(more));
  }

  public OutputTarget inputs(Collection<Path> more) {
    List<Path> all = new ArrayList<>(inputs);
    all.addAll(more);
    return new OutputTarget(path, kind, command, all, overwrite, recognizer, option);
  }

  /** The user's --overwrite: whatever is at the output may be replaced (never an input, never the working folder). */
  public OutputTarget overwrite(boolean replaceAnything) {
    return new OutputTarget(path, kind, command, inputs, replaceAnything, recognizer, option);
  }

  /** Tells a file Kiln wrote before (which may be replaced without --overwrite) from anyone else's. */
  public OutputTarget recognizedBy(Predicate<Path> previousKilnOutput) {
    return new OutputTarget(path, kind, command, inputs, overwrite, previousKilnOutput, option);
  }

  /** The command-line option that named this output, for messages (default "-o"). */
  public OutputTarget namedBy(String optionName) {
    return new OutputTarget(path, kind, command, inputs, overwrite, recognizer, optionName);
  }

  public Path path() {
    return path;
  }

  public Kind kind() {
    return kind;
  }

  public String command() {
    return command;
  }

  List<Path> inputs() {
    return inputs;
  }

  /** The output as an absolute, normalized path (its last element not resolved: it may be Kiln's link). */
  Path absolute() {
    return path.toAbsolutePath().normalize();
  }

  /** Throws {@link KilnException.BadInput} (exit 2) when writing here would break one of the rules above. */
  public void check() {
    Path absolute = absolute();
    if (absolute.getParent() == null) {
      throw new KilnException.BadInput(option + " " + path + ": the file system root cannot be an output");
    }
    Path located = realLocation(absolute);
    Path followed = realFollowed(absolute);
    for (Path input : inputs) {
      Path realInput;
      try {
        realInput = input.toRealPath();
      } catch (IOException e) {
        continue; // A missing input is reported by whoever reads it.
      }
      for (Path output : List.of(located, followed)) {
        String relation = output.equals(realInput) ? "is the input"
            : output.startsWith(realInput) ? "lies inside the input"
            : realInput.startsWith(output) ? "contains the input" : null;
        if (relation != null) {
          throw new KilnException.BadInput(option + " " + path + ": the output " + relation + " " + input
              + "; Kiln never writes over what it reads, choose another output");
        }
      }
    }
    Path workingFolder = realFollowed(Path.of("").toAbsolutePath());
    if (workingFolder.startsWith(located) || workingFolder.startsWith(followed)) {
      throw new KilnException.BadInput(option + " " + path + ": the output is the working folder or contains it; "
          + "Kiln never replaces the folder you are in, name a new folder");
    }
    if (!Files.exists(absolute, LinkOption.NOFOLLOW_LINKS)) {
      return;
    }
    if (kind == Kind.FILE) {
      if (Files.isDirectory(absolute)) {
        throw new KilnException.BadInput(option + " " + path + ": is a folder; expected a file name");
      }
      if (!overwrite && !recognizedSafely(absolute)) {
        throw new KilnException.BadInput(option + " " + path + ": a file Kiln did not write is already there; "
            + "pass --overwrite to replace it");
      }
      return;
    }
    // Kiln's link counts as Kiln's even when its version folder has gone missing: replacing it loses nothing.
    boolean kilnLink = Staging.currentVersion(absolute) != null;
    if (!overwrite && !kilnLink && !isKilnFolder(absolute) && !isEmptyFolder(absolute)) {
      throw new KilnException.BadInput(option + " " + path + ": " + (Files.isDirectory(absolute) ? "a folder"
          : Files.isSymbolicLink(absolute) ? "a link" : "a file")
          + " that is not a Kiln output is already there; pass --overwrite to replace it");
    }
  }

  private boolean recognizedSafely(Path file) {
    try {
      return Files.isRegularFile(file) && recognizer.test(file);
    } catch (RuntimeException unreadable) {
      return false;
    }
  }

  /** Checks the rules, removes what killed runs left, and opens a staging folder for a folder output. */
  public StagedFolder stageFolder() {
    if (kind != Kind.FOLDER) {
      throw new IllegalStateException(path + " is a file output");
    }
    check();
    return new StagedFolder(this);
  }

  /** Checks the rules, removes what killed runs left, and opens a temporary file for a file output. */
  public StagedFile stageFile() {
    if (kind != Kind.FILE) {
      throw new IllegalStateException(path + " is a folder output");
    }
    check();
    return new StagedFile(this);
  }

  /** Writes a small file output in one go. */
  public void write(byte[] bytes) {
    try (StagedFile staged = stageFile()) {
      try {
        Files.write(staged.path(), bytes);
      } catch (IOException e) {
        throw new UncheckedIOException("cannot write " + path + ": " + e.getMessage(), e);
      }
      staged.commit();
    }
  }

  public void writeString(String text) {
    write(text.getBytes(StandardCharsets.UTF_8));
  }

  /** Whether {@code folder} is a folder output Kiln wrote: its marker is there (through Kiln's link or not). */
  public static boolean isKilnFolder(Path folder) {
    return Files.isDirectory(folder) && Files.isRegularFile(folder.resolve(MARKER));
  }

  /**
   * Recognizer for JSON outputs (reports): a JSON object whose {@code "producer"} starts with "kiln". Every JSON
   * file a Kiln command writes carries that field, so the next run may replace it.
   */
  public static boolean isKilnJson(Path file) {
    try {
      if (Files.size(file) > (64L << 20)) {
        return false;
      }
      JsonNode node = Json.mapper().readTree(file.toFile());
      return node != null && node.isObject() && node.path("producer").asText("").startsWith("kiln");
    } catch (IOException | RuntimeException e) {
      return false;
    }
  }

  private static boolean isEmptyFolder(Path folder) {
    if (!Files.isDirectory(folder, LinkOption.NOFOLLOW_LINKS)) {
      return false;
    }
    try (Stream<Path> entries = Files.list(folder)) {
      return entries.findAny().isEmpty();
    } catch (IOException e) {
      return false;
    }
  }

  /** The real path of the output's parent plus its own name (the link itself when it is one). */
  private static Path realLocation(Path absolute) {
    return realFollowed(absolute.getParent()).resolve(absolute.getFileName().toString());
  }

  /** The real path of the nearest existing ancestor (links followed) with the missing rest appended. */
  static Path realFollowed(Path absolute) {
    Path existing = absolute;
    List<String> missing = new ArrayList<>();
    while (existing != null) {
      try {
        Path real = existing.toRealPath();
        for (int index = missing.size() - 1; index >= 0; index--) {
          real = real.resolve(missing.get(index));
        }
        return real;
      } catch (IOException e) {
        if (existing.getFileName() == null) {
          break;
        }
        missing.add(existing.getFileName().toString());
        existing = existing.getParent();
      }
    }
    return absolute;
  }
}
