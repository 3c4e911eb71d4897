package dev.kiln.common;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The names of everything Kiln stages beside an output {@code NAME}, and the clean-up of what a killed run left.
 * All of them start with {@code .NAME.kiln-} and carry the writing process's id, so a later run removes only
 * Kiln's own leftovers and only those of processes that are gone:
 *
 * <ul>
 *   <li>{@code .NAME.kiln-PID-NONCE/} a folder version (the target of the link {@code NAME} once committed);
 *   <li>{@code .NAME.kiln-link-PID-NONCE} the new link before it is renamed over {@code NAME};
 *   <li>{@code .NAME.kiln-replaced-PID-NONCE} a non-link output moved aside, put back if {@code NAME} is missing;
 *   <li>{@code .NAME.kiln-PID-NONCE[-N].partial} a file output or companion being written.
 * </ul>
 */
final class Staging {
  private static final SecureRandom RANDOM = new SecureRandom();
  /** This process's staging entries still in use: its other entries are leftovers like a dead process's. */
  private static final java.util.Set<Path> IN_FLIGHT = java.util.concurrent.ConcurrentHashMap.newKeySet();

  private Staging() {}

  static String nonce() {
    byte[] bytes = new byte[8];
    RANDOM.nextBytes(bytes);
    return HexFormat.of().formatHex(bytes);
  }

  static void claim(Path entry) {
    IN_FLIGHT.add(entry);
  }

  static void release(Path entry) {
    IN_FLIGHT.remove(entry);
  }

  static long pid() {
    return ProcessHandle.current().pid();
  }

  static String version(String name, String nonce) {
    return "." + name + ".kiln-" + pid() + "-" + nonce;
  }

  static String link(String name, String nonce) {
    return "." + name + ".kiln-link-" + pid() + "-" + nonce;
  }

  static String replaced(String name, String nonce) {
    return "." + name + ".kiln-replaced-" + pid() + "-" + nonce;
  }

  static String partial(String name, String nonce, int index) {
    return "." + name + ".kiln-" + pid() + "-" + nonce + (index == 0 ? "" : "-" + index) + ".partial";
  }

  private static Pattern pattern(String name) {
    return Pattern.compile("\\." + Pattern.quote(name) + "\\.kiln-(link-|replaced-)?(\\d+)-([0-9a-f]{16})(-\\d+)?(\\.partial)?");
  }

  /** Whether {@code entry} (a plain file name) is a folder version of output {@code name}. */
  static boolean isVersion(String name, String entry) {
    Matcher matcher = pattern(name).matcher(entry);
    return matcher.matches() && matcher.group(1) == null && matcher.group(4) == null && matcher.group(5) == null;
  }

  /** Removes what dead Kiln processes left beside {@code output}; puts a moved-aside output back when it is missing. */
  static void cleanStale(Path output) {
    Path folder = output.getParent();
    String name = output.getFileName().toString();
    if (!Files.isDirectory(folder)) {
      return;
    }
    Pattern pattern = pattern(name);
    String current = currentVersion(output);
    List<Path> entries = new ArrayList<>();
    try (DirectoryStream<Path> stream = Files.newDirectoryStream(folder, "." + globEscape(name) + ".*")) {
      stream.forEach(entries::add);
    } catch (IOException e) {
      return;
    }
    entries.sort(null);
    for (Path entry : entries) {
      String entryName = entry.getFileName().toString();
      Matcher matcher = pattern.matcher(entryName);
      if (!matcher.matches()) {
        // Staging of Kiln versions before process ids were recorded: a folder ".NAME.partial" and files
        // ".NAME.<digits>.partial". Nothing but Kiln ever made these names.
        if (entryName.equals("." + name + ".partial") || entryName.matches("\\." + Pattern.quote(name) + "\\.\\d+\\.partial")) {
          deleteTree(entry);
        }
        continue;
      }
      long pid = Long.parseLong(matcher.group(2));
      boolean inUse = pid == pid() ? IN_FLIGHT.contains(entry)
          : ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false);
      if (inUse) {
        continue;
      }
      if ("replaced-".equals(matcher.group(1))) {
        if (!Files.exists(output, LinkOption.NOFOLLOW_LINKS)) {
          move(entry, output);
        } else {
          deleteTree(entry);
        }
      } else if (!entryName.equals(current)) {
        deleteTree(entry);
      }
    }
  }

  /** The version folder the link {@code output} points at, or null when it is no such link. */
  static String currentVersion(Path output) {
    if (!Files.isSymbolicLink(output)) {
      return null;
    }
    try {
      Path target = Files.readSymbolicLink(output);
      if (target.getNameCount() == 1 && isVersion(output.getFileName().toString(), target.toString())) {
        return target.toString();
      }
    } catch (IOException e) {
      return null;
    }
    return null;
  }

  static void move(Path source, Path target) {
    try {
      Files.move(source, target, StandardCopyOption.ATOMIC_MOVE);
    } catch (AtomicMoveNotSupportedException e) {
      throw new UncheckedIOException("cannot rename " + source + " to " + target + " atomically: " + e.getMessage(), e);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot rename " + source + " to " + target + ": " + e.getMessage(), e);
    }
  }

  /** Deletes a file, a link (never what it points at) or a folder tree (links inside are not followed). */
  static void deleteTree(Path root) {
    deleteTree(root, null);
  }

  /** As {@link #deleteTree(Path)}, reaching {@code killPoint} after the first file is gone. */
  static void deleteTree(Path root, String killPoint) {
    try {
      BasicFileAttributes attributes;
      try {
        attributes = Files.readAttributes(root, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
      } catch (java.nio.file.NoSuchFileException gone) {
        return;
      }
      if (!attributes.isDirectory()) {
        Files.deleteIfExists(root);
        return;
      }
      List<Path> paths;
      try (Stream<Path> walk = Files.walk(root)) {
        paths = walk.sorted(Comparator.reverseOrder()).toList();
      }
      boolean first = true;
      for (Path path : paths) {
        Files.deleteIfExists(path);
        if (first && killPoint != null) {
          KillPoints.reach(killPoint);
        }
        first = false;
      }
    } catch (IOException e) {
      // Best effort: what is left keeps its recognisable name and the next run tries again.
    }
  }

  private static String globEscape(String name) {
    return name.replaceAll("([\\\\*?\\[\\]{}])", "\\\\$1");
  }
}
