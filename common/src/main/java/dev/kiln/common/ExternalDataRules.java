package dev.kiln.common;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.BiConsumer;

/**
 * The rules an ONNX tensor's external data must obey, for every reader of a model (graph's ModelReader, and the
 * runner before it hands a model to ONNX Runtime): a model file is untrusted input, so a location must be a
 * relative path without {@code ..}, must not lead out of the model's folder through a symbolic link, must be a
 * regular file, and offset and length must lie inside it and agree with the tensor's shape and type.
 *
 * <p>{@link #checkModel} scans a whole model file (a minimal protobuf walk of the fields that can hold tensors)
 * and applies the rules to every external tensor; {@link #resolve} and {@link #checkLength} apply them to one
 * tensor for readers that parse the model themselves.
 */
public final class ExternalDataRules {
  private final Path model;
  private final Path folder;
  private Path realFolder;
  /** Every external file a checked location resolved to (real paths), for readers that must know the model's whole bytes. */
  private final Set<Path> files = new TreeSet<>();

  /** A checked external range: the real (symbolic links resolved) file, the offset and the length in bytes. */
  public record Range(Path file, long offset, long length) {}

  /** Rules for the tensors of {@code model}; locations are relative to its folder. */
  public ExternalDataRules(Path model) {
    this.model = model;
    this.folder = model.toAbsolutePath().getParent();
  }

  /**
   * Checks every tensor of the ONNX file {@code model} whose data lives outside it (initializers, constants and
   * attributes in the main graph, subgraphs, functions and training graphs) without reading any external file
   * but its size. Throws {@link KilnException.BadInput} naming the model, the tensor and the location.
   */
  public static void checkModel(Path model) {
    ExternalDataScan.scan(model, new ExternalDataRules(model));
  }

  /**
   * {@link #checkModel(Path)}, also telling {@code operators} the (domain, op_type) of every node met on the
   * way, subgraphs and functions included (the runner uses it to spot operators ORT lacks on the device).
   */
  public static void checkModel(Path model, BiConsumer<String, String> operators) {
    ExternalDataScan.scan(model, new ExternalDataRules(model), operators);
  }

  /**
   * {@link #checkModel(Path, BiConsumer)}, returning the real paths of the external data files the model's tensors
   * use (sorted, each once; empty when all data is inside the model file): with the model file, all of its bytes.
   */
  public static Set<Path> checkModelFiles(Path model, BiConsumer<String, String> operators) {
    ExternalDataRules rules = new ExternalDataRules(model);
    ExternalDataScan.scan(model, rules, operators);
    return java.util.Collections.unmodifiableSet(new TreeSet<>(rules.files));
  }

  /**
   * Checks one tensor's {@code location}, {@code offset} and {@code length} entries (null when absent; a
   * missing length runs to the end of the file) and returns the range they name.
   */
  public Range resolve(String tensorName, String location, String offsetText, String lengthText) {
    if (location == null || location.isEmpty()) {
      throw bad(tensorName, "(none)", "has data_location EXTERNAL but no 'location' entry");
    }
    if (location.startsWith("/") || location.startsWith("\\") || location.matches("^[A-Za-z]:.*")) {
      throw bad(tensorName, location, "is an absolute path; external data must be relative to the model folder");
    }
    if (location.indexOf('\0') >= 0) {
      throw bad(tensorName, location, "contains a NUL character");
    }
    Path relative;
    try {
      relative = Path.of(location);
    } catch (InvalidPathException e) {
      throw bad(tensorName, location, "is not a valid path: " + e.getReason());
    }
    if (relative.isAbsolute()) {
      throw bad(tensorName, location, "is an absolute path; external data must be relative to the model folder");
    }
    for (Path part : relative) {
      if (part.toString().equals("..")) {
        throw bad(tensorName, location, "contains '..' and could escape the model folder");
      }
    }
    if (location.contains("\\..") || location.contains("..\\")) {
      throw bad(tensorName, location, "contains '..' and could escape the model folder");
    }
    Path file = folder.resolve(relative).normalize();
    if (!Files.exists(file, LinkOption.NOFOLLOW_LINKS)) {
      throw bad(tensorName, location, "does not exist (looked for " + file + ")");
    }
    Path realFile;
    try {
      if (realFolder == null) {
        realFolder = folder.toRealPath();
      }
      realFile = file.toRealPath();
    } catch (IOException e) {
      throw bad(tensorName, location, "cannot be resolved: " + e.getMessage());
    }
    if (!realFile.startsWith(realFolder)) {
      throw bad(tensorName, location, "is a symbolic link leading outside the model folder (to " + realFile + ")");
    }
    long fileSize;
    try {
      BasicFileAttributes attributes = Files.readAttributes(realFile, BasicFileAttributes.class);
      if (!attributes.isRegularFile()) {
        throw bad(tensorName, location, "is not a regular file");
      }
      fileSize = attributes.size();
    } catch (IOException e) {
      throw bad(tensorName, location, "cannot be read: " + e.getMessage());
    }
    long offset = parseNumber(tensorName, location, "offset", offsetText, 0);
    long length = parseNumber(tensorName, location, "length", lengthText, -1);
    if (offset > fileSize) {
      throw bad(tensorName, location, "offset " + offset + " is beyond the end of the file (" + fileSize + " bytes)");
    }
    if (length < 0) {
      length = fileSize - offset;
    }
    if (length > fileSize - offset) {
      throw bad(tensorName, location,
          "offset " + offset + " + length " + length + " = " + (offset + length) + " is beyond the end of the file (" + fileSize + " bytes)");
    }
    files.add(realFile);
    return new Range(realFile, offset, length);
  }

  /**
   * Checks that {@code length} bytes are exactly what {@code dims} elements of {@code bitsPerElement} bits need
   * (4-bit types pack two per byte); {@code typeName} only names the type in the message. A type without a fixed
   * width (0 bits: STRING) cannot live in external data.
   */
  public void checkLength(String tensorName, String location, String typeName, int bitsPerElement, long[] dims, long length) {
    if (bitsPerElement <= 0) {
      throw bad(tensorName, location, "holds " + typeName + " elements, which cannot be stored as external data");
    }
    long expected;
    try {
      long count = 1;
      for (long dim : dims) {
        if (dim < 0) {
          throw bad(tensorName, location, "has a negative dimension " + dim);
        }
        count = Math.multiplyExact(count, dim);
      }
      expected = Math.addExact(Math.multiplyExact(count, (long) bitsPerElement), 7) / 8;
    } catch (ArithmeticException e) {
      throw bad(tensorName, location, "has a shape whose size overflows");
    }
    if (length != expected) {
      StringBuilder shape = new StringBuilder("[");
      for (int index = 0; index < dims.length; index++) {
        shape.append(index == 0 ? "" : ",").append(dims[index]);
      }
      throw bad(tensorName, location,
          "has length " + length + " bytes, but shape " + shape.append(']') + " of " + typeName + " needs " + expected + " bytes");
    }
  }

  private long parseNumber(String tensorName, String location, String key, String text, long fallback) {
    if (text == null) {
      return fallback;
    }
    try {
      long value = Long.parseLong(text.trim());
      if (value < 0) {
        throw bad(tensorName, location, key + " " + value + " is negative");
      }
      return value;
    } catch (NumberFormatException e) {
      throw bad(tensorName, location, key + " '" + text + "' is not a number");
    }
  }

  /** A malformed model file (the scan could not walk it), named by its path. */
  KilnException.BadInput malformed(String problem) {
    return new KilnException.BadInput(model + ": not a valid ONNX model: " + problem);
  }

  KilnException.BadInput bad(String tensorName, String location, String problem) {
    return new KilnException.BadInput(
        model + ": tensor '" + Printable.name(tensorName) + "': external data location '" + Printable.name(location) + "' " + problem);
  }
}
