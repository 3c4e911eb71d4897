package dev.kiln.runner.image;

import java.io.ByteArrayInputStream;
import java.io.DataInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;

/** Reads the tEXt/iTXt chunks of a PNG (to show and test the generation parameters a file carries). */
public final class PngText {
  private PngText() {}

  public static Map<String, String> read(byte[] png) {
    Map<String, String> text = new LinkedHashMap<>();
    try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(png))) {
      in.skipNBytes(8);
      while (in.available() > 0) {
        int length = in.readInt();
        byte[] type = in.readNBytes(4);
        byte[] data = in.readNBytes(length);
        in.readInt();
        String kind = new String(type, StandardCharsets.US_ASCII);
        int separator = indexOfZero(data);
        if (kind.equals("tEXt") && separator >= 0) {
          text.put(new String(data, 0, separator, StandardCharsets.ISO_8859_1),
              new String(data, separator + 1, data.length - separator - 1, StandardCharsets.ISO_8859_1));
        } else if (kind.equals("iTXt") && separator >= 0) {
          int position = separator + 3;
          position = indexOfZero(data, position) + 1;
          position = indexOfZero(data, position) + 1;
          text.put(new String(data, 0, separator, StandardCharsets.ISO_8859_1),
              new String(data, position, data.length - position, StandardCharsets.UTF_8));
        }
      }
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
    return text;
  }

  private static int indexOfZero(byte[] data) {
    return indexOfZero(data, 0);
  }

  private static int indexOfZero(byte[] data, int from) {
    for (int index = from; index < data.length; index++) {
      if (data[index] == 0) {
        return index;
      }
    }
    return -1;
  }
}
