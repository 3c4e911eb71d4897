package dev.kiln.graph;

import dev.kiln.graph.proto.OnnxProto.TensorProto;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/**
 * A tensor whose bytes live in a data file next to the model: {@code file}, {@code offset}, {@code length}.
 * Nothing is read at load time. {@link #bytes()} maps the range on first use; {@link #chunks()} maps a
 * tensor of any size as several maps of at most {@link #MAX_MAP_BYTES} each (a Java map is capped at
 * 2 GiB); {@link #writeTo} copies through the kernel without mapping at all.
 */
public final class ExternalTensor implements Tensor {
  /** Largest single memory map: one byte under 2 GiB is what FileChannel.map accepts; use a round 1 GiB. */
  public static final long MAX_MAP_BYTES = 1L << 30;

  /** Largest single read or write between a heap buffer and a file (the JDK stages such I/O in a direct buffer). */
  static final int READ_CHUNK_BYTES = 1 << 20;

  private final Path file;
  private final long offset;
  private final long length;
  private final DataType dataType;
  private final long[] dims;
  private final TensorProto original;
  private volatile ByteBuffer mapped;

  ExternalTensor(Path file, long offset, long length, DataType dataType, long[] dims, TensorProto original) {
    this.file = file;
    this.offset = offset;
    this.length = length;
    this.dataType = dataType;
    this.dims = dims.clone();
    this.original = original;
  }

  /** A tensor over a byte range of an existing file, for tools that lay out data files themselves. */
  public static ExternalTensor of(Path file, long offset, long length, DataType dataType, long[] dims) {
    return new ExternalTensor(file.toAbsolutePath(), offset, length, dataType, dims, null);
  }

  public Path file() {
    return file;
  }

  public long offset() {
    return offset;
  }

  public long length() {
    return length;
  }

  /** The TensorProto it was read from (external_data entries included), for the writer; or null if made by Kiln. */
  TensorProto original() {
    return original;
  }

  @Override
  public DataType dataType() {
    return dataType;
  }

  @Override
  public long[] dims() {
    return dims.clone();
  }

  @Override
  public long byteSize() {
    return length;
  }

  @Override
  public ByteBuffer bytes() {
    if (length > MAX_MAP_BYTES) {
      throw new IllegalStateException(
          "external tensor of " + length + " bytes in " + file + " is larger than one map; use chunks() or writeTo()");
    }
    ByteBuffer view = mapped;
    if (view == null) {
      view = map(offset, length);
      mapped = view;
    }
    return view.duplicate().order(ByteOrder.LITTLE_ENDIAN);
  }

  /** A heap copy read with positional reads, so no page of the data file stays mapped (see {@link Tensor#readBytes}). */
  @Override
  public ByteBuffer readBytes() {
    if (length > MAX_MAP_BYTES) {
      throw new IllegalStateException(
          "external tensor of " + length + " bytes in " + file + " is larger than one buffer; use writeTo()");
    }
    ByteBuffer copy = ByteBuffer.allocate((int) length).order(ByteOrder.LITTLE_ENDIAN);
    try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
      // Reads go through a bounded buffer: a heap read of the whole tensor would make the JDK allocate (and keep
      // cached per thread) a direct buffer as large as the tensor.
      ByteBuffer window = copy.duplicate();
      while (window.position() < window.capacity()) {
        window.limit(Math.min(window.capacity(), window.position() + READ_CHUNK_BYTES));
        int read = channel.read(window, offset + window.position());
        if (read < 0) {
          throw new IOException("data file ended after " + (offset + window.position()) + " bytes; tensor needs " + (offset + length));
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + length + " bytes at " + offset + " of " + file + ": " + e.getMessage(), e);
    }
    return copy.asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
  }

  /** The data as consecutive read-only maps of at most {@link #MAX_MAP_BYTES} each. */
  public List<ByteBuffer> chunks() {
    List<ByteBuffer> chunks = new ArrayList<>();
    for (long start = 0; start < length; start += MAX_MAP_BYTES) {
      chunks.add(map(offset + start, Math.min(MAX_MAP_BYTES, length - start)));
    }
    return chunks;
  }

  private ByteBuffer map(long position, long size) {
    try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
      MappedByteBuffer map = channel.map(FileChannel.MapMode.READ_ONLY, position, size);
      return map.asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot map " + size + " bytes at " + position + " of " + file + ": " + e.getMessage(), e);
    }
  }

  @Override
  public void writeTo(WritableByteChannel channel) throws IOException {
    try (FileChannel source = FileChannel.open(file, StandardOpenOption.READ)) {
      long done = 0;
      while (done < length) {
        long moved = source.transferTo(offset + done, length - done, channel);
        if (moved <= 0) {
          throw new IOException("data file " + file + " ended after " + (offset + done) + " bytes; tensor needs " + (offset + length));
        }
        done += moved;
      }
    }
  }

  @Override
  public String toString() {
    return "ExternalTensor(" + dataType + Shape.of(dims) + " " + file.getFileName() + "@" + offset + "+" + length + ")";
  }
}
