package dev.kiln.exporter.archive;

import dev.kiln.common.KilnException;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.zip.DataFormatException;
import java.util.zip.Inflater;

/**
 * The central directory of a zip file, read by hand because {@link java.util.zip.ZipFile} does not say where an
 * entry's bytes start: torch stores its storages uncompressed and aligned, and Kiln streams them from that
 * offset into the output's data file instead of reading them through the heap. Every name is checked before it is
 * used (no absolute paths, no {@code ..}, no backslashes), every entry's extent against the file, and inflated
 * entries against a size cap and a ratio cap.
 */
public final class ZipIndex {
  /** The most a metadata entry (pickle, code) may inflate to: torch's largest UNet code tree is ~20 MB. */
  static final long MAX_INFLATED_BYTES = 256L << 20;
  /** Deflate reaches ~1000:1 at best on real data; past that the entry is built to exhaust memory. */
  static final long MAX_RATIO = 1000;

  /** One entry: where its bytes are, how they are stored. */
  public record Entry(String name, int method, long compressedSize, long size, long localHeaderOffset, long dataOffset) {
    public boolean stored() {
      return method == 0;
    }
  }

  private final Path file;
  private final long fileSize;
  private final Map<String, Entry> entries;

  private ZipIndex(Path file, long fileSize, Map<String, Entry> entries) {
    this.file = file;
    this.fileSize = fileSize;
    this.entries = entries;
  }

  public Path file() {
    return file;
  }

  public Map<String, Entry> entries() {
    return entries;
  }

  public Entry entry(String name) {
    return entries.get(name);
  }

  public static ZipIndex open(Path file) {
    try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
      long size = channel.size();
      long endRecord = findEndRecord(channel, size, file);
      ByteBuffer end = read(channel, endRecord, 22);
      long count = end.getShort(10) & 0xFFFF;
      long directorySize = end.getInt(12) & 0xFFFFFFFFL;
      long directoryOffset = end.getInt(16) & 0xFFFFFFFFL;
      if (count == 0xFFFF || directorySize == 0xFFFFFFFFL || directoryOffset == 0xFFFFFFFFL) {
        // Zip64: a locator sits just before the end record and points at the 64-bit end record.
        if (endRecord < 20) {
          throw bad(file, "zip64 end record locator missing");
        }
        ByteBuffer locator = read(channel, endRecord - 20, 20);
        if (locator.getInt(0) != 0x07064b50) {
          throw bad(file, "zip64 end record locator missing");
        }
        long zip64End = locator.getLong(8);
        if (zip64End < 0 || zip64End + 56 > size) {
          throw bad(file, "zip64 end record points past the end of the file");
        }
        ByteBuffer end64 = read(channel, zip64End, 56);
        if (end64.getInt(0) != 0x06064b50) {
          throw bad(file, "zip64 end record has the wrong signature");
        }
        count = end64.getLong(32);
        directorySize = end64.getLong(40);
        directoryOffset = end64.getLong(48);
      }
      if (directoryOffset < 0 || directorySize < 0 || directoryOffset + directorySize > size || directorySize > Integer.MAX_VALUE
          || count < 0 || count > directorySize / 46) {
        throw bad(file, "central directory extends past the end of the file");
      }
      ByteBuffer directory = read(channel, directoryOffset, (int) directorySize);
      Map<String, Entry> entries = new LinkedHashMap<>();
      int position = 0;
      for (long index = 0; index < count; index++) {
        if (position + 46 > directory.limit() || directory.getInt(position) != 0x02014b50) {
          throw bad(file, "central directory entry " + index + " is malformed");
        }
        int method = directory.getShort(position + 10) & 0xFFFF;
        long compressed = directory.getInt(position + 20) & 0xFFFFFFFFL;
        long uncompressed = directory.getInt(position + 24) & 0xFFFFFFFFL;
        int nameLength = directory.getShort(position + 28) & 0xFFFF;
        int extraLength = directory.getShort(position + 30) & 0xFFFF;
        int commentLength = directory.getShort(position + 32) & 0xFFFF;
        long localOffset = directory.getInt(position + 42) & 0xFFFFFFFFL;
        int nameStart = position + 46;
        if (nameStart + nameLength + extraLength + commentLength > directory.limit()) {
          throw bad(file, "central directory entry " + index + " is malformed");
        }
        byte[] nameBytes = new byte[nameLength];
        directory.get(nameStart, nameBytes);
        String name = new String(nameBytes, StandardCharsets.UTF_8);
        checkName(file, name);
        // Zip64 extra field: the 64-bit values follow in this order, present only where the 32-bit one is all ones.
        int extra = nameStart + nameLength;
        int extraEnd = extra + extraLength;
        while (extra + 4 <= extraEnd) {
          int id = directory.getShort(extra) & 0xFFFF;
          int length = directory.getShort(extra + 2) & 0xFFFF;
          int field = extra + 4;
          if (id == 0x0001) {
            if (uncompressed == 0xFFFFFFFFL && field + 8 <= extraEnd) {
              uncompressed = directory.getLong(field);
              field += 8;
            }
            if (compressed == 0xFFFFFFFFL && field + 8 <= extraEnd) {
              compressed = directory.getLong(field);
              field += 8;
            }
            if (localOffset == 0xFFFFFFFFL && field + 8 <= extraEnd) {
              localOffset = directory.getLong(field);
            }
          }
          extra += 4 + length;
        }
        position = extraEnd + commentLength;
        if (localOffset < 0 || compressed < 0 || uncompressed < 0 || localOffset + 30 > size) {
          throw bad(file, "entry " + quote(name) + " starts past the end of the file");
        }
        ByteBuffer local = read(channel, localOffset, 30);
        if (local.getInt(0) != 0x04034b50) {
          throw bad(file, "entry " + quote(name) + " has no local header at offset " + localOffset);
        }
        long dataOffset = localOffset + 30 + (local.getShort(26) & 0xFFFF) + (local.getShort(28) & 0xFFFF);
        if (dataOffset + compressed > size) {
          throw bad(file, "entry " + quote(name) + " extends past the end of the file");
        }
        if (method != 0 && method != 8) {
          throw bad(file, "entry " + quote(name) + " uses compression method " + method + " (expected stored or deflated)");
        }
        if (method == 0 && compressed != uncompressed) {
          throw bad(file, "stored entry " + quote(name) + " declares " + uncompressed + " bytes but holds " + compressed);
        }
        if (entries.put(name, new Entry(name, method, compressed, uncompressed, localOffset, dataOffset)) != null) {
          throw bad(file, "entry " + quote(name) + " appears twice");
        }
      }
      return new ZipIndex(file, size, entries);
    } catch (IOException e) {
      throw new KilnException.BadInput(file + ": cannot read the archive: " + e.getMessage(), e);
    }
  }

  /**
   * The whole content of a (small) entry. Deflated entries are inflated under a cap on the result and on the
   * ratio, and must inflate to exactly the size their directory record declares.
   */
  public byte[] readAll(Entry entry) {
    long limit = Math.min(MAX_INFLATED_BYTES, Math.max(1L << 20, entry.compressedSize() * MAX_RATIO));
    if (entry.size() > limit) {
      throw bad(file, "entry " + quote(entry.name()) + " declares " + entry.size() + " bytes from " + entry.compressedSize()
          + " (a zip bomb; at most " + limit + " accepted)");
    }
    try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
      if (entry.stored()) {
        byte[] bytes = new byte[(int) entry.size()];
        ByteBuffer buffer = ByteBuffer.wrap(bytes);
        long position = entry.dataOffset();
        while (buffer.hasRemaining()) {
          if (channel.read(buffer, position + buffer.position()) < 0) {
            throw bad(file, "entry " + quote(entry.name()) + " is cut short");
          }
        }
        return bytes;
      }
      if (entry.compressedSize() > Integer.MAX_VALUE) {
        throw bad(file, "entry " + quote(entry.name()) + " is too large to be metadata");
      }
      ByteBuffer compressed = read(channel, entry.dataOffset(), (int) entry.compressedSize());
      Inflater inflater = new Inflater(true);
      try {
        inflater.setInput(compressed);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        byte[] chunk = new byte[1 << 16];
        while (!inflater.finished()) {
          int produced = inflater.inflate(chunk);
          if (produced == 0 && (inflater.needsInput() || inflater.needsDictionary())) {
            throw bad(file, "entry " + quote(entry.name()) + " is a truncated deflate stream");
          }
          if (out.size() + (long) produced > entry.size()) {
            throw bad(file, "entry " + quote(entry.name()) + " inflates past its declared " + entry.size() + " bytes (a zip bomb)");
          }
          out.write(chunk, 0, produced);
        }
        if (out.size() != entry.size()) {
          throw bad(file, "entry " + quote(entry.name()) + " inflates to " + out.size() + " bytes, declared " + entry.size());
        }
        return out.toByteArray();
      } catch (DataFormatException e) {
        throw bad(file, "entry " + quote(entry.name()) + " is not a valid deflate stream: " + e.getMessage());
      } finally {
        inflater.end();
      }
    } catch (IOException e) {
      throw new KilnException.BadInput(file + ": cannot read entry " + quote(entry.name()) + ": " + e.getMessage(), e);
    }
  }

  public long fileSize() {
    return fileSize;
  }

  private static void checkName(Path file, String name) {
    boolean hostile = name.isEmpty() || name.startsWith("/") || name.contains("\\") || name.contains("\0")
        || (name.length() > 1 && name.charAt(1) == ':');
    for (String part : name.split("/", -1)) {
      if (part.equals("..")) {
        hostile = true;
      }
    }
    if (hostile) {
      throw bad(file, "entry " + quote(name) + " escapes the archive (zip-slip name)");
    }
  }

  private static long findEndRecord(FileChannel channel, long size, Path file) throws IOException {
    int window = (int) Math.min(size, 22 + 0xFFFF);
    if (window < 22) {
      throw bad(file, "not a zip archive (too short)");
    }
    ByteBuffer tail = read(channel, size - window, window);
    for (int position = window - 22; position >= 0; position--) {
      if (tail.getInt(position) == 0x06054b50) {
        return size - window + position;
      }
    }
    throw bad(file, "not a zip archive (no end of central directory record)");
  }

  private static ByteBuffer read(FileChannel channel, long offset, int length) throws IOException {
    ByteBuffer buffer = ByteBuffer.allocate(length).order(ByteOrder.LITTLE_ENDIAN);
    while (buffer.hasRemaining()) {
      if (channel.read(buffer, offset + buffer.position()) < 0) {
        throw new IOException("unexpected end of file at " + (offset + buffer.position()));
      }
    }
    return buffer.flip();
  }

  static String quote(String name) {
    StringBuilder out = new StringBuilder("'");
    for (int index = 0; index < name.length() && index < 200; index++) {
      char character = name.charAt(index);
      if (character < 0x20 || character == 0x7F || character == '\'') {
        out.append(String.format("\\x%02x", (int) character));
      } else {
        out.append(character);
      }
    }
    return out.append(name.length() > 200 ? "...'" : "'").toString();
  }

  static KilnException.BadInput bad(Path file, String message) {
    return new KilnException.BadInput(file + ": " + message);
  }
}
