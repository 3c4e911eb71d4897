package dev.kiln.testdata;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * The scratch folder of a fuzz target: Kiln's readers take paths, so each fuzz input is laid out as files first.
 * One folder per target lives for the whole run (a fuzzer executes a target a million times; a fresh temporary
 * folder each time would spend most of the run in mkdir/rm), and {@link #reset()} removes what the previous
 * input wrote, so no input sees another's files.
 *
 * <p>Multi-file targets (a tokenizer folder, a pipeline's configs) take one input split at NUL bytes by
 * {@link #sections}: text formats rarely contain NUL, the committed seeds stay readable, and a mutation that
 * adds or removes a NUL moves text from one file to the next, which is itself a useful malformed case.
 */
public final class FuzzFolder {
  private final Path root;
  private final Set<Path> written = new LinkedHashSet<>();

  private FuzzFolder(Path root) {
    this.root = root;
  }

  /** A fresh temporary folder named after the target, deleted when the JVM exits. */
  public static FuzzFolder create(String target) {
    try {
      Path root = Files.createTempDirectory("kiln-fuzz-" + target + "-");
      Runtime.getRuntime().addShutdownHook(new Thread(() -> deleteTree(root)));
      return new FuzzFolder(root.toRealPath());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  public Path root() {
    return root;
  }

  /** Writes {@code bytes} to {@code relative} (creating folders); {@code null} bytes leave the file absent. */
  public Path write(String relative, byte[] bytes) {
    Path file = root.resolve(relative);
    if (bytes == null) {
      return file;
    }
    try {
      Files.createDirectories(file.getParent());
      Files.write(file, bytes);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    written.add(file);
    return file;
  }

  /** Removes every file {@link #write} made since the last reset; folders and fixed layout files stay. */
  public void reset() {
    for (Path file : written) {
      try {
        Files.deleteIfExists(file);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
    written.clear();
  }

  /**
   * Splits {@code input} at NUL bytes into exactly {@code count} sections; missing sections are {@code null}
   * (the file is absent), and anything after the last expected NUL stays in the last section.
   */
  public static List<byte[]> sections(byte[] input, int count) {
    List<byte[]> sections = new ArrayList<>(count);
    int start = 0;
    for (int index = 0; index < count; index++) {
      if (start > input.length) {
        sections.add(null);
        continue;
      }
      int end = index == count - 1 ? input.length : indexOfNul(input, start);
      byte[] section = new byte[end - start];
      System.arraycopy(input, start, section, 0, section.length);
      sections.add(section);
      start = end + 1;
    }
    return sections;
  }

  private static int indexOfNul(byte[] input, int start) {
    for (int index = start; index < input.length; index++) {
      if (input[index] == 0) {
        return index;
      }
    }
    return input.length;
  }

  private static void deleteTree(Path root) {
    try {
      Files.walkFileTree(root, new SimpleFileVisitor<>() {
        @Override
        public FileVisitResult visitFile(Path file, BasicFileAttributes attributes) throws IOException {
          Files.deleteIfExists(file);
          return FileVisitResult.CONTINUE;
        }

        @Override
        public FileVisitResult postVisitDirectory(Path folder, IOException failure) throws IOException {
          Files.deleteIfExists(folder);
          return FileVisitResult.CONTINUE;
        }
      });
    } catch (IOException e) {
      // A leftover temporary folder is harmless; the shutdown hook must not fail the run.
    }
  }
}
