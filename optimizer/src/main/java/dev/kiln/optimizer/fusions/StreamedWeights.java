package dev.kiln.optimizer.fusions;

import dev.kiln.graph.ComputedTensor;
import dev.kiln.graph.DataType;
import dev.kiln.graph.ExternalTensor;
import dev.kiln.graph.Tensor;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.file.StandardOpenOption;

/**
 * Weights a fusion rearranges (an OHWI filter, packed QKV projections) computed block by block while the writer
 * streams them: each block's source bytes are read by positional reads of the weight's data file into reused
 * per-thread buffers, so a full-size UNet's 20-60 MB weights are never whole in memory, nor copied whole first.
 */
final class StreamedWeights {
  private StreamedWeights() {}

  /** Bytes of one block: large enough that per-block reads cost nothing, small enough to stay in cache. */
  static final int BLOCK_BYTES = 1 << 20;

  /**
   * A tensor whose bytes are what {@code blocks} writes; asked for all its bytes at once it runs the same blocks into
   * one buffer, so both give the same bytes.
   */
  static Tensor of(DataType type, long[] dims, ComputedTensor.Streamer blocks) {
    long size = type.byteSize(count(dims));
    return Tensor.streamed(type, dims, () -> {
      ByteBuffer whole = ByteBuffer.allocate(Math.toIntExact(size)).order(ByteOrder.LITTLE_ENDIAN);
      try {
        blocks.writeTo(new Appender(whole));
      } catch (IOException e) {
        throw new UncheckedIOException("cannot compute a " + type + " weight: " + e.getMessage(), e);
      }
      return whole.flip();
    }, blocks);
  }

  private static long count(long[] dims) {
    long count = 1;
    for (long dim : dims) {
      count = Math.multiplyExact(count, dim);
    }
    return count;
  }

  /**
   * Per-thread direct buffers, reused across weights (a set per weight would leave up to a few hundred MB of native
   * memory behind until a collection frees it); slot {@code slot} holds at least {@code bytes}, cleared.
   */
  static ByteBuffer scratch(int slot, int bytes) {
    ByteBuffer[] buffers = SCRATCH.get();
    if (buffers[slot] == null || buffers[slot].capacity() < bytes) {
      buffers[slot] = ByteBuffer.allocateDirect(Math.max(bytes, BLOCK_BYTES)).order(ByteOrder.LITTLE_ENDIAN);
    }
    return buffers[slot].clear().limit(bytes);
  }

  /** Slots: the packed QKV reads three sources and fills one target. */
  private static final ThreadLocal<ByteBuffer[]> SCRATCH = ThreadLocal.withInitial(() -> new ByteBuffer[4]);

  /** Byte ranges of a source weight: positional reads of its data file, or slices of its bytes read once. */
  static final class Source implements AutoCloseable {
    private final Tensor tensor;
    private final ExternalTensor external;
    private final FileChannel file;
    private final ByteBuffer whole;

    Source(Tensor tensor) throws IOException {
      this.tensor = tensor;
      this.external = tensor instanceof ExternalTensor inFile ? inFile : null;
      this.file = external == null ? null : FileChannel.open(external.file(), StandardOpenOption.READ);
      this.whole = external == null ? tensor.readBytes().order(ByteOrder.LITTLE_ENDIAN) : null;
    }

    /** Fills {@code target} (from its position to its limit) with the bytes at {@code from}; flips it for reading. */
    ByteBuffer read(long from, ByteBuffer target) throws IOException {
      if (file != null) {
        long start = external.offset() + from - target.position();
        while (target.hasRemaining()) {
          if (file.read(target, start + target.position()) < 0) {
            throw new IOException("data file " + external.file() + " ended inside " + tensor);
          }
        }
      } else {
        int at = whole.position() + Math.toIntExact(from);
        target.put(whole.duplicate().position(at).limit(at + target.remaining()));
      }
      return target.flip();
    }

    @Override
    public void close() throws IOException {
      if (file != null) {
        file.close();
      }
    }
  }

  /** Appends what is written to one buffer (sized to fit it all). */
  private record Appender(ByteBuffer target) implements WritableByteChannel {
    @Override
    public int write(ByteBuffer source) {
      int count = source.remaining();
      target.put(source);
      return count;
    }

    @Override
    public boolean isOpen() {
      return true;
    }

    @Override
    public void close() {}
  }
}
