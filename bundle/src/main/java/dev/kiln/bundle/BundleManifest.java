package dev.kiln.bundle;

import com.fasterxml.jackson.databind.JsonNode;
import dev.kiln.common.Json;
import dev.kiln.common.KilnException;
import dev.kiln.common.OutputTarget;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Stream;

/**
 * {@value #FILE}: what a bundle holds and where it came from. Every file of the bundle except the manifest itself,
 * the output marker and {@value #CREATED} is listed with its size and sha256, so verification catches a changed,
 * missing or added file. The creation time lives in {@value #CREATED}, outside the hashed content, so the same
 * inputs give byte-identical bundles.
 */
public final class BundleManifest {
  public static final String FILE = "kiln-bundle.json";
  public static final String CREATED = "kiln-bundle.created";
  public static final String FORMAT = "kiln-bundle";
  public static final int FORMAT_VERSION = 1;
  /** Files outside the listing: the manifest, the creation time and OutputTarget's folder marker. */
  public static final Set<String> UNLISTED = Set.of(FILE, CREATED, OutputTarget.MARKER);

  private BundleManifest() {}

  /** Whether a folder is a Kiln bundle (has a manifest). */
  public static boolean isBundle(Path folder) {
    return Files.isRegularFile(folder.resolve(FILE));
  }

  /** Reads the manifest; a missing or malformed one is bad input naming the file. */
  public static JsonNode read(Path bundle) {
    Path file = bundle.resolve(FILE);
    JsonNode manifest;
    try {
      manifest = Json.mapper().readTree(file.toFile());
    } catch (IOException e) {
      throw new KilnException.BadInput(file + ": " + Json.describe(e));
    }
    if (manifest == null || !FORMAT.equals(manifest.path("format").asText()) || !manifest.path("files").isObject()) {
      throw new KilnException.BadInput(file + ": not a Kiln bundle manifest (expected \"format\": \"" + FORMAT + "\" and \"files\")");
    }
    int version = manifest.path("formatVersion").asInt(-1);
    if (version != FORMAT_VERSION) {
      throw new KilnException.BadInput(file + ": bundle format version " + version + ", this Kiln reads version " + FORMAT_VERSION);
    }
    return manifest;
  }

  /** Every file under the bundle except the unlisted ones, by path relative to the bundle with '/' separators, sorted. */
  public static TreeMap<String, Path> files(Path bundle) {
    TreeMap<String, Path> files = new TreeMap<>();
    try (Stream<Path> walk = Files.walk(bundle)) {
      walk.filter(Files::isRegularFile).forEach(file -> {
        String relative = relative(bundle, file);
        if (!UNLISTED.contains(relative)) {
          files.put(relative, file);
        }
      });
    } catch (IOException e) {
      throw new KilnException.BadInput(bundle + ": cannot list: " + e.getMessage());
    }
    return files;
  }

  static String relative(Path root, Path file) {
    StringBuilder text = new StringBuilder();
    for (Path part : root.relativize(file)) {
      if (text.length() > 0) {
        text.append('/');
      }
      text.append(part);
    }
    return text.toString();
  }

  /**
   * Checks every listed file's size and sha256 and that no unlisted file was added; the first mismatch is bad input
   * (exit 2) naming the file. Returns the number of files checked.
   */
  public static int verify(Path bundle) {
    Path root;
    try {
      // A bundle written by Kiln is a link to its staged folder; walk the folder itself.
      root = bundle.toRealPath();
    } catch (IOException e) {
      throw new KilnException.BadInput("bundle " + bundle + " does not exist or cannot be read");
    }
    JsonNode manifest = read(root);
    TreeMap<String, Path> present = files(root);
    JsonNode listed = manifest.path("files");
    for (Iterator<Map.Entry<String, JsonNode>> entries = listed.fields(); entries.hasNext();) {
      Map.Entry<String, JsonNode> entry = entries.next();
      String name = entry.getKey();
      Path file = present.remove(name);
      if (file == null) {
        throw new KilnException.BadInput("bundle " + root + " is incomplete: " + name + " is listed in " + FILE + " but missing");
      }
      long size = entry.getValue().path("size").asLong(-1);
      String sha256 = entry.getValue().path("sha256").asText("");
      long actualSize = size(file);
      if (actualSize != size) {
        throw new KilnException.BadInput("bundle " + root + " was modified: " + name + " has " + actualSize + " bytes, " + FILE + " says " + size);
      }
      String actual = sha256(file);
      if (!actual.equals(sha256)) {
        throw new KilnException.BadInput("bundle " + root + " was modified: " + name + " has sha256 " + actual + ", " + FILE + " says " + sha256);
      }
    }
    if (!present.isEmpty()) {
      throw new KilnException.BadInput("bundle " + root + " was modified: " + present.firstKey() + " is not listed in " + FILE);
    }
    return listed.size();
  }

  static long size(Path file) {
    try {
      return Files.size(file);
    } catch (IOException e) {
      throw new KilnException.BadInput(file + ": cannot read: " + e.getMessage());
    }
  }

  /** The sha256 of a file's bytes, lower-case hex. */
  public static String sha256(Path file) {
    MessageDigest digest = newDigest();
    byte[] buffer = new byte[1 << 16];
    try (InputStream in = Files.newInputStream(file)) {
      for (int read = in.read(buffer); read >= 0; read = in.read(buffer)) {
        digest.update(buffer, 0, read);
      }
    } catch (IOException e) {
      throw new KilnException.BadInput(file + ": cannot read: " + e.getMessage());
    }
    return HexFormat.of().formatHex(digest.digest());
  }

  public static MessageDigest newDigest() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every Java runtime has SHA-256", e);
    }
  }
}
