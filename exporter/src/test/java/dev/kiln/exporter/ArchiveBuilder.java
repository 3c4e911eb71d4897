package dev.kiln.exporter;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.CRC32;
import java.util.zip.Deflater;

/**
 * Writes TorchScript-shaped zips byte by byte for the hostile-archive tests: any entry name, stored or deflated,
 * and any declared size (a lying directory is what a zip bomb is).
 */
final class ArchiveBuilder {
  private record Entry(String name, byte[] data, boolean deflate, long declaredSize) {}

  private final List<Entry> entries = new ArrayList<>();

  ArchiveBuilder stored(String name, byte[] data) {
    entries.add(new Entry(name, data, false, data.length));
    return this;
  }

  ArchiveBuilder text(String name, String text) {
    return stored(name, text.getBytes(StandardCharsets.UTF_8));
  }

  ArchiveBuilder deflated(String name, byte[] data, long declaredSize) {
    entries.add(new Entry(name, data, true, declaredSize));
    return this;
  }

  /** A minimal traced module: root class {@code __torch__.M} with one float parameter {@code w} of {@code numel}. */
  static ArchiveBuilder module(String forwardBody, long numel, int storageBytes) {
    return new ArchiveBuilder().text("archive/version", "3\n")
        .stored("archive/data.pkl", Pickles.moduleWithParameter("w", numel))
        .text("archive/code/__torch__.py", "class M(Module):\n  __parameters__ = [\"w\", ]\n  w : Tensor\n"
            + "  def forward(self: __torch__.M,\n    x: Tensor) -> Tensor:\n" + forwardBody)
        .stored("archive/data/0", new byte[storageBytes]);
  }

  Path write(Path file) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream directory = new ByteArrayOutputStream();
    int count = 0;
    for (Entry entry : entries) {
      byte[] name = entry.name().getBytes(StandardCharsets.UTF_8);
      byte[] payload = entry.data();
      if (entry.deflate()) {
        Deflater deflater = new Deflater(9, true);
        deflater.setInput(entry.data());
        deflater.finish();
        ByteArrayOutputStream compressed = new ByteArrayOutputStream();
        byte[] buffer = new byte[1 << 16];
        while (!deflater.finished()) {
          compressed.write(buffer, 0, deflater.deflate(buffer));
        }
        deflater.end();
        payload = compressed.toByteArray();
      }
      CRC32 crc = new CRC32();
      crc.update(entry.data());
      int offset = out.size();
      ByteBuffer local = ByteBuffer.allocate(30).order(ByteOrder.LITTLE_ENDIAN);
      local.putInt(0x04034b50).putShort((short) 20).putShort((short) 0).putShort((short) (entry.deflate() ? 8 : 0)).putShort((short) 0)
          .putShort((short) 0).putInt((int) crc.getValue()).putInt(payload.length).putInt((int) entry.declaredSize())
          .putShort((short) name.length).putShort((short) 0);
      out.write(local.array());
      out.write(name);
      out.write(payload);
      ByteBuffer central = ByteBuffer.allocate(46).order(ByteOrder.LITTLE_ENDIAN);
      central.putInt(0x02014b50).putShort((short) 20).putShort((short) 20).putShort((short) 0).putShort((short) (entry.deflate() ? 8 : 0))
          .putShort((short) 0).putShort((short) 0).putInt((int) crc.getValue()).putInt(payload.length).putInt((int) entry.declaredSize())
          .putShort((short) name.length).putShort((short) 0).putShort((short) 0).putShort((short) 0).putShort((short) 0).putInt(0)
          .putInt(offset);
      directory.write(central.array());
      directory.write(name);
      count++;
    }
    int directoryOffset = out.size();
    out.write(directory.toByteArray());
    ByteBuffer end = ByteBuffer.allocate(22).order(ByteOrder.LITTLE_ENDIAN);
    end.putInt(0x06054b50).putShort((short) 0).putShort((short) 0).putShort((short) count).putShort((short) count)
        .putInt(directory.size()).putInt(directoryOffset).putShort((short) 0);
    out.write(end.array());
    Files.write(file, out.toByteArray());
    return file;
  }
}
