package dev.kiln.graph;

import dev.kiln.common.KilnException;
import dev.kiln.graph.proto.OnnxProto.StringStringEntryProto;
import dev.kiln.graph.proto.OnnxProto.TensorProto;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;

/**
 * Resolves a tensor's external_data entries to a checked (file, offset, length). A model file is
 * untrusted input: its locations must stay inside the model's folder and its ranges inside the file.
 */
final class ExternalData {
  private final Path model;
  private final Path folder;
  private Path realFolder;

  ExternalData(Path model) {
    this.model = model;
    Path parent = model.toAbsolutePath().getParent();
    this.folder = parent;
  }

  ExternalTensor resolve(TensorProto proto, DataType dataType, long[] dims) {
    String tensorName = proto.getName();
    String location = null;
    String offsetText = null;
    String lengthText = null;
    for (StringStringEntryProto entry : proto.getExternalDataList()) {
      switch (entry.getKey()) {
        case "location" -> location = entry.getValue();
        case "offset" -> offsetText = entry.getValue();
        case "length" -> lengthText = entry.getValue();
        default -> {
          // checksum and unknown keys carry no layout information; they are kept in the proto.
        }
      }
    }
    if (location == null || location.isEmpty()) {
      throw bad(tensorName, "(none)", "has data_location EXTERNAL but no 'location' entry");
    }
    if (location.startsWith("/") || location.startsWith("\\") || location.matches("^[A-Za-z]:.*")) {
      throw bad(tensorName, location, "is an absolute path; external data must be relative to the model folder");
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
    if (!dataType.hasFixedSize()) {
      throw bad(tensorName, location, "holds " + dataType + " elements, which cannot be stored as external data");
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
      expected = dataType.byteSize(count);
    } catch (ArithmeticException e) {
      throw bad(tensorName, location, "has a shape whose size overflows");
    }
    if (length != expected) {
      throw bad(tensorName, location,
          "has length " + length + " bytes, but shape " + Shape.of(dims) + " of " + dataType + " needs " + expected + " bytes");
    }
    return new ExternalTensor(realFile, offset, length, dataType, dims, proto);
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

  private KilnException.BadInput bad(String tensorName, String location, String problem) {
    return new KilnException.BadInput(
        model + ": tensor '" + tensorName + "': external data location '" + location + "' " + problem);
  }
}
