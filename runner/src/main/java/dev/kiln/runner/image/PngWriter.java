package dev.kiln.runner.image;

import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.zip.CRC32;
import java.util.zip.Deflater;

/**
 * A minimal deterministic PNG encoder: 8-bit RGB, one IDAT, fixed deflate level, no timestamps, so the same
 * pixels and text give the same bytes. Text goes in a tEXt chunk when it is Latin-1 (the PNG rule) and an
 * uncompressed iTXt chunk otherwise, as Automatic1111/PIL do for the {@code parameters} key.
 */
public final class PngWriter {
  private static final byte[] SIGNATURE = {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

  private PngWriter() {}

  public static byte[] encode(RgbImage image, java.util.Map<String, String> text) {
    try {
      ByteArrayOutputStream bytes = new ByteArrayOutputStream();
      bytes.write(SIGNATURE);
      ByteArrayOutputStream header = new ByteArrayOutputStream();
      DataOutputStream headerData = new DataOutputStream(header);
      headerData.writeInt(image.width());
      headerData.writeInt(image.height());
      headerData.write(new byte[] {8, 2, 0, 0, 0});
      chunk(bytes, "IHDR", header.toByteArray());
      for (java.util.Map.Entry<String, String> entry : text.entrySet()) {
        textChunk(bytes, entry.getKey(), entry.getValue());
      }
      chunk(bytes, "IDAT", compressedRows(image));
      chunk(bytes, "IEND", new byte[0]);
      return bytes.toByteArray();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static void textChunk(ByteArrayOutputStream out, String key, String value) throws IOException {
    boolean latin1 = StandardCharsets.ISO_8859_1.newEncoder().canEncode(value);
    ByteArrayOutputStream body = new ByteArrayOutputStream();
    body.write(key.getBytes(StandardCharsets.ISO_8859_1));
    body.write(0);
    if (latin1) {
      body.write(value.getBytes(StandardCharsets.ISO_8859_1));
      chunk(out, "tEXt", body.toByteArray());
    } else {
      // compression flag 0, method 0, empty language tag, empty translated keyword
      body.write(new byte[] {0, 0, 0, 0});
      body.write(value.getBytes(StandardCharsets.UTF_8));
      chunk(out, "iTXt", body.toByteArray());
    }
  }

  /** Each row gets the Sub filter (left-neighbour difference), which suits smooth generated images. */
  private static byte[] compressedRows(RgbImage image) {
    int stride = image.width() * 3;
    byte[] raw = new byte[(stride + 1) * image.height()];
    byte[] pixels = image.pixels();
    for (int y = 0; y < image.height(); y++) {
      int rowStart = y * (stride + 1);
      raw[rowStart] = 1;
      for (int x = 0; x < stride; x++) {
        int current = pixels[y * stride + x] & 0xff;
        int left = x >= 3 ? pixels[y * stride + x - 3] & 0xff : 0;
        raw[rowStart + 1 + x] = (byte) (current - left);
      }
    }
    Deflater deflater = new Deflater(6);
    try {
      deflater.setInput(raw);
      deflater.finish();
      ByteArrayOutputStream compressed = new ByteArrayOutputStream(raw.length / 2 + 64);
      byte[] buffer = new byte[1 << 16];
      while (!deflater.finished()) {
        compressed.write(buffer, 0, deflater.deflate(buffer));
      }
      return compressed.toByteArray();
    } finally {
      deflater.end();
    }
  }

  private static void chunk(ByteArrayOutputStream out, String type, byte[] data) throws IOException {
    DataOutputStream stream = new DataOutputStream(out);
    byte[] typeBytes = type.getBytes(StandardCharsets.US_ASCII);
    stream.writeInt(data.length);
    stream.write(typeBytes);
    stream.write(data);
    CRC32 crc = new CRC32();
    crc.update(typeBytes);
    crc.update(data);
    stream.writeInt((int) crc.getValue());
  }
}
