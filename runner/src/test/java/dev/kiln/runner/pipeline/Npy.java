package dev.kiln.runner.pipeline;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Reads NumPy .npy files (format 1.0, little-endian float32 or int32, C order) written by the reference scripts. */
final class Npy {
  private static final Pattern DESCRIPTION = Pattern.compile("'descr':\\s*'([^']+)'");
  private static final Pattern SHAPE = Pattern.compile("'shape':\\s*\\(([^)]*)\\)");

  record Array(String type, long[] shape, ByteBuffer data) {
    float[] floats() {
      if (!type.equals("<f4")) {
        throw new IllegalStateException("expected float32, got " + type);
      }
      float[] values = new float[data.remaining() / 4];
      data.duplicate().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(values);
      return values;
    }

    long[] longs() {
      ByteBuffer view = data.duplicate().order(ByteOrder.LITTLE_ENDIAN);
      int size = type.equals("<i8") ? 8 : 4;
      long[] values = new long[data.remaining() / size];
      for (int index = 0; index < values.length; index++) {
        values[index] = size == 8 ? view.getLong(index * 8) : view.getInt(index * 4);
      }
      return values;
    }
  }

  private Npy() {}

  static Array read(Path file) throws IOException {
    byte[] bytes = Files.readAllBytes(file);
    if (bytes[0] != (byte) 0x93 || bytes[1] != 'N' || bytes[6] != 1) {
      throw new IOException(file + " is not a version 1 .npy file");
    }
    int headerLength = (bytes[8] & 0xff) | ((bytes[9] & 0xff) << 8);
    String header = new String(bytes, 10, headerLength, StandardCharsets.ISO_8859_1);
    Matcher description = DESCRIPTION.matcher(header);
    Matcher shape = SHAPE.matcher(header);
    if (!description.find() || !shape.find() || header.contains("'fortran_order': True")) {
      throw new IOException(file + ": unsupported header " + header);
    }
    long[] dimensions = Arrays.stream(shape.group(1).split(",")).map(String::trim).filter(part -> !part.isEmpty())
        .mapToLong(Long::parseLong).toArray();
    return new Array(description.group(1), dimensions, ByteBuffer.wrap(bytes, 10 + headerLength, bytes.length - 10 - headerLength).slice());
  }
}
