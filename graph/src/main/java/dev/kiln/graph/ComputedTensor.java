package dev.kiln.graph;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.WritableByteChannel;
import java.util.function.Supplier;

/** A tensor Kiln made in memory; its bytes come from a supplier that must answer the same bytes each time. */
public final class ComputedTensor implements Tensor {
  private final DataType dataType;
  private final long[] dims;
  private final Supplier<ByteBuffer> source;
  private final Streamer streamer;

  /** Writes a computed tensor's bytes (exactly those its supplier answers) to a channel in bounded pieces. */
  @FunctionalInterface
  public interface Streamer {
    void writeTo(WritableByteChannel channel) throws IOException;
  }

  ComputedTensor(DataType dataType, long[] dims, Supplier<ByteBuffer> source) {
    this(dataType, dims, source, null);
  }

  ComputedTensor(DataType dataType, long[] dims, Supplier<ByteBuffer> source, Streamer streamer) {
    if (dataType == DataType.STRING || dataType == DataType.UNDEFINED) {
      throw new IllegalArgumentException("computed tensors hold fixed-size elements, not " + dataType);
    }
    this.dataType = dataType;
    this.dims = dims.clone();
    this.source = source;
    this.streamer = streamer;
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
    return dataType.byteSize(elementCount());
  }

  @Override
  public ByteBuffer bytes() {
    ByteBuffer data = source.get();
    if (data.remaining() != byteSize()) {
      throw new IllegalStateException(
          "computed " + dataType + Shape.of(dims) + " tensor produced " + data.remaining() + " bytes, expected " + byteSize());
    }
    return data.asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
  }

  /**
   * Writes through the tensor's streamer when it has one (its bytes are then never whole in memory), else in bounded
   * slices, so the JDK's staging buffer for heap-to-channel writes stays small.
   */
  @Override
  public void writeTo(WritableByteChannel channel) throws IOException {
    if (streamer != null) {
      streamer.writeTo(channel);
      return;
    }
    ByteBuffer data = bytes();
    while (data.hasRemaining()) {
      ByteBuffer slice = data.duplicate();
      slice.limit(Math.min(data.limit(), data.position() + ExternalTensor.READ_CHUNK_BYTES));
      while (slice.hasRemaining()) {
        channel.write(slice);
      }
      data.position(slice.position());
    }
  }

  @Override
  public String toString() {
    return "ComputedTensor(" + dataType + Shape.of(dims) + ")";
  }
}
