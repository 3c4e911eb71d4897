package dev.kiln.graph;

import dev.kiln.common.AtomicFiles;
import dev.kiln.graph.proto.OnnxProto.ModelProto;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;

/**
 * Writes a model as a .onnx file plus, when any tensor goes external, one data file next to it. Both are
 * written to temporary files in the target folder and renamed into place (data file first, so a model
 * never points at a missing file). The same model and options always give the same bytes.
 */
public final class ModelWriter {
  private ModelWriter() {}

  public static void write(Model model, Path target) {
    write(model, target, WriteOptions.defaults());
  }

  public static void write(Model model, Path target, WriteOptions options) {
    Path absolute = target.toAbsolutePath();
    Path folder = absolute.getParent();
    String dataFileName = options.dataFileName() != null ? options.dataFileName() : absolute.getFileName() + ".data";
    Path dataFile = folder.resolve(dataFileName);

    ProtoEncoder encoder = new ProtoEncoder(options, dataFileName);
    ModelProto proto = encoder.encodeModel(model);
    // Both files are finished under temporary names before either is renamed, so a failure part-way (a full
    // disk, an unreadable source) leaves the previous model and data file untouched as a pair.
    Path dataTemporary = null;
    Path modelTemporary = null;
    try {
      Files.createDirectories(folder);
      if (!encoder.placements().isEmpty()) {
        dataTemporary = Files.createTempFile(folder, "." + dataFileName + ".", ".partial");
        writeDataFile(dataTemporary, encoder);
      }
      modelTemporary = Files.createTempFile(folder, "." + absolute.getFileName() + ".", ".partial");
      try (OutputStream out = new BufferedOutputStream(Files.newOutputStream(modelTemporary), 1 << 20)) {
        proto.writeTo(out);
      }
      if (dataTemporary != null) {
        AtomicFiles.commit(dataTemporary, dataFile);
        dataTemporary = null;
      }
      AtomicFiles.commit(modelTemporary, absolute);
      modelTemporary = null;
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + absolute + ": " + e.getMessage(), e);
    } finally {
      AtomicFiles.deleteQuietly(dataTemporary);
      AtomicFiles.deleteQuietly(modelTemporary);
    }
    repointOverwrittenSources(dataFile, encoder);
  }

  /** Serializes a model to bytes (inline tensors only; external ones must already sit in a file). */
  public static byte[] toBytes(Model model) {
    ProtoEncoder encoder = new ProtoEncoder(WriteOptions.allInline(), "unused.data");
    return encoder.encodeModel(model).toByteArray();
  }

  /**
   * A single tensor as a serialized TensorProto with its data inline (the format of ONNX test-case .pb files).
   * A tensor read from such a file comes back byte-identical.
   */
  public static byte[] tensorBytes(Tensor tensor, String name) {
    ProtoEncoder encoder = new ProtoEncoder(WriteOptions.allInline(), "unused.data");
    return encoder.encodeStandaloneTensor(tensor, name).toByteArray();
  }

  private static void writeDataFile(Path temporary, ProtoEncoder encoder) throws IOException {
    List<ProtoEncoder.Placement> placements = encoder.placements();
    try (FileChannel channel = FileChannel.open(temporary, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
      long position = 0;
      int index = 0;
      while (index < placements.size()) {
        ProtoEncoder.Placement placement = placements.get(index);
        if (placement.offset() > position) {
          // Alignment padding is written as zeros (not left as a hole) so the bytes are the same everywhere.
          writeZeros(channel, placement.offset() - position);
        }
        int end = index + 1;
        if (placement.tensor() instanceof ExternalTensor first) {
          // Tensors that sit back to back in one source file and stay back to back here are copied by one
          // kernel transfer: far fewer round trips than a transfer per (often 64 MiB) tensor.
          long sourceEnd = first.offset() + first.length();
          long targetEnd = placement.offset() + first.length();
          while (end < placements.size() && placements.get(end).tensor() instanceof ExternalTensor next && next.file().equals(first.file())
              && next.offset() == sourceEnd && placements.get(end).offset() == targetEnd) {
            sourceEnd += next.length();
            targetEnd += next.length();
            end++;
          }
          transfer(first.file(), first.offset(), sourceEnd - first.offset(), channel);
          position = targetEnd;
        } else {
          placement.tensor().writeTo(channel);
          position = placement.offset() + placement.tensor().byteSize();
        }
        if (channel.position() != position) {
          throw new IOException("tensor data ended at " + channel.position() + ", expected " + position);
        }
        index = end;
      }
    }
  }

  private static void transfer(Path source, long offset, long length, FileChannel target) throws IOException {
    try (FileChannel input = FileChannel.open(source, StandardOpenOption.READ)) {
      long done = 0;
      while (done < length) {
        long moved = input.transferTo(offset + done, length - done, target);
        if (moved <= 0) {
          throw new IOException("data file " + source + " ended after " + (offset + done) + " bytes; expected " + (offset + length));
        }
        done += moved;
      }
    }
  }

  private static void writeZeros(FileChannel channel, long count) throws IOException {
    ByteBuffer zeros = ByteBuffer.allocate((int) Math.min(count, 1 << 16));
    long left = count;
    while (left > 0) {
      zeros.clear().limit((int) Math.min(left, zeros.capacity()));
      while (zeros.hasRemaining()) {
        left -= channel.write(zeros);
      }
    }
  }

  /**
   * Writing over the data file the model was read from replaced that file: tensors that pointed into it
   * now point into the new file (same bytes, new offsets), so the in-memory model stays readable.
   */
  private static void repointOverwrittenSources(Path dataFile, ProtoEncoder encoder) {
    Path written;
    try {
      written = dataFile.toRealPath();
    } catch (IOException e) {
      return;
    }
    for (ProtoEncoder.Placement placement : encoder.placements()) {
      if (placement.tensor() instanceof ExternalTensor source && source.file().equals(written)) {
        placement.repoint().accept(new ExternalTensor(written, placement.offset(), source.length(), source.dataType(), source.dims(),
            source.original()));
      }
    }
  }
}
