package dev.kiln.optimizer.precision;

import dev.kiln.graph.DataType;
import dev.kiln.graph.ExternalTensor;
import dev.kiln.graph.Tensor;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.IntBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * float32 → float16 tensor conversion with sign-preserving clamping into ±[{@value #SMALLEST}, {@value #LARGEST}]:
 * a weight beyond float16's range becomes the largest finite half instead of Inf, and a tiny non-zero weight the
 * smallest subnormal instead of zero (a zero scale or epsilon can turn a normalisation into a division by zero).
 * NaN stays NaN. Values are rounded to nearest, ties to even.
 *
 * <p>One pass: clamping, rounding and counting the clamped values happen together, on the bit pattern, in fixed
 * {@value #CHUNK_FLOATS}-element chunks; an external weight streams from its file through two reused direct buffers
 * to the writer's channel (written on a background thread while the next chunk converts), so a 3.4 GB UNet converts without its weights, or garbage the size of them, on the heap.
 */
final class HalfTensors {
  private HalfTensors() {}

  static final float LARGEST = 65504f;
  static final float SMALLEST = 5.96e-8f;

  /** Floats per conversion chunk: 2 MiB read, 1 MiB written per system call, far above per-call overhead. */
  static final int CHUNK_FLOATS = 1 << 19;

  private static final int LARGEST_BITS = Float.floatToRawIntBits(LARGEST); // 0x477fe000
  private static final int SMALLEST_BITS = Float.floatToRawIntBits(SMALLEST);
  /** 2^-14, float16's smallest normal number: at and above it the result is a normal half. */
  private static final int HALF_NORMAL_BITS = 0x38800000;
  /** 0.5f: its ulp is 2^-24, float16's subnormal step, so adding it rounds a small value onto that grid. */
  private static final int SUBNORMAL_ROUNDER_BITS = 0x3f000000;
  private static final float SUBNORMAL_ROUNDER = 0.5f;
  /** float32's exponent bias minus float16's (127 − 15), in place. */
  private static final int REBIAS = 112 << 23;
  private static final short LARGEST_HALF = 0x7bff;
  private static final short SMALLEST_HALF = 0x0001;

  /** Per-thread scratch of the streaming conversion: direct, so file reads and writes go straight through. */
  private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

  private static final class Scratch {
    final ByteBuffer floats = ByteBuffer.allocateDirect(CHUNK_FLOATS * 4).order(ByteOrder.LITTLE_ENDIAN);
    /** Two output buffers: the writer thread writes one while the next chunk is converted into the other. */
    final ByteBuffer[] halves = {ByteBuffer.allocateDirect(CHUNK_FLOATS * 2).order(ByteOrder.LITTLE_ENDIAN),
        ByteBuffer.allocateDirect(CHUNK_FLOATS * 2).order(ByteOrder.LITTLE_ENDIAN)};
    final int[] bits = new int[CHUNK_FLOATS];
    final short[] converted = new short[CHUNK_FLOATS];
  }

  /**
   * The clamped, rounded float16 of the float32 with bit pattern {@code bits}. The common case (a normal result) is
   * one range check and integer arithmetic: adding 0xfff plus the lowest kept mantissa bit before dropping 13 bits
   * rounds to nearest with ties to even, and a carry out of the mantissa correctly moves to the next binade.
   */
  static short toHalf(int bits) {
    short sign = (short) ((bits >>> 16) & 0x8000);
    int magnitude = bits & 0x7fffffff;
    if (Integer.compareUnsigned(magnitude - HALF_NORMAL_BITS, LARGEST_BITS - HALF_NORMAL_BITS) <= 0) {
      return (short) (sign | ((magnitude - REBIAS + 0xfff + ((magnitude >>> 13) & 1)) >>> 13));
    }
    return (short) (sign | edge(magnitude));
  }

  /** Whether the conversion clamps the float32 with bit pattern {@code bits} (NaN is kept, not clamped). */
  static boolean clamps(int bits) {
    int magnitude = bits & 0x7fffffff;
    return magnitude > LARGEST_BITS && magnitude <= 0x7f800000 || magnitude != 0 && magnitude < SMALLEST_BITS;
  }

  /** The unsigned result for a magnitude outside float16's normal range: clamped, subnormal, zero or NaN. */
  private static int edge(int magnitude) {
    if (magnitude > LARGEST_BITS) {
      if (magnitude > 0x7f800000) {
        // NaN: quiet, with the top of the payload kept (as dev.kiln.common.HalfFloats does).
        return 0x7e00 | ((magnitude & 0x7fffff) >>> 13);
      }
      return LARGEST_HALF;
    }
    if (magnitude >= SMALLEST_BITS) {
      // A subnormal half: adding 0.5 rounds the value to a multiple of 2^-24 (ties to even, by IEEE addition); the
      // difference of the bit patterns is then that multiple, 1..1024 (1024 being the smallest normal half).
      return Float.floatToRawIntBits(Float.intBitsToFloat(magnitude) + SUBNORMAL_ROUNDER) - SUBNORMAL_ROUNDER_BITS;
    }
    return magnitude == 0 ? 0 : SMALLEST_HALF;
  }

  /**
   * Converts {@code count} floats of {@code bits} into {@code halves}; answers how many were clamped. The common
   * case stays in the loop; only values outside float16's normal range take a call.
   */
  static long convert(int[] bits, short[] halves, int count) {
    long clamped = 0;
    for (int i = 0; i < count; i++) {
      int value = bits[i];
      int magnitude = value & 0x7fffffff;
      int half = (magnitude - REBIAS + 0xfff + ((magnitude >>> 13) & 1)) >>> 13;
      // One unsigned comparison tells a normal result from the rest (measured 0.8 ns a value on this machine's cores).
      if (Integer.compareUnsigned(magnitude - HALF_NORMAL_BITS, LARGEST_BITS - HALF_NORMAL_BITS) > 0) {
        half = edge(magnitude);
        if (clamps(value)) {
          clamped++;
        }
      }
      halves[i] = (short) (((value >>> 16) & 0x8000) | half);
    }
    return clamped;
  }

  /** Converts every float left in {@code source} into {@code target} through the scratch arrays; answers the clamps. */
  private static long convert(ByteBuffer source, ByteBuffer target, Scratch scratch) {
    IntBuffer floats = source.order(ByteOrder.LITTLE_ENDIAN).asIntBuffer();
    java.nio.ShortBuffer halves = target.order(ByteOrder.LITTLE_ENDIAN).asShortBuffer();
    long clamped = 0;
    while (floats.hasRemaining()) {
      int count = Math.min(floats.remaining(), CHUNK_FLOATS);
      floats.get(scratch.bits, 0, count);
      clamped += convert(scratch.bits, scratch.converted, count);
      halves.put(scratch.converted, 0, count);
    }
    source.position(source.limit());
    target.position(target.position() + halves.position() * 2);
    return clamped;
  }

  /** How many values of a float32 tensor the conversion clamps; streams the tensor once, holds nothing. */
  static long clampedCount(Tensor source) {
    Scratch scratch = SCRATCH.get();
    long[] clamped = {0};
    forEachChunk(source, scratch, chunk -> {
      IntBuffer floats = chunk.asIntBuffer();
      while (floats.hasRemaining()) {
        int count = Math.min(floats.remaining(), CHUNK_FLOATS);
        floats.get(scratch.bits, 0, count);
        for (int i = 0; i < count; i++) {
          if (clamps(scratch.bits[i])) {
            clamped[0]++;
          }
        }
      }
    });
    return clamped[0];
  }

  /** Same as the loop above on one value: used by the Constant-attribute path and tests. */
  static float clamp(float value) {
    float magnitude = Math.abs(value);
    if (magnitude > LARGEST) {
      return Math.copySign(LARGEST, value);
    }
    if (magnitude > 0 && magnitude < SMALLEST) {
      return Math.copySign(SMALLEST, value);
    }
    return value;
  }

  /**
   * The float16 copy of {@code source}, never held whole when the writer streams it: written chunk by chunk from
   * the source's file (or, for a tensor computed in memory, from its one buffer), and computed whole only when
   * someone asks for all its bytes (a small tensor that goes inline). Each conversion reports its clamp count to
   * {@code counts} under {@code name}, so the report needs no pass of its own.
   */
  static Tensor lazyHalf(Tensor source, String name, ClampCounts counts) {
    counts.expect(name, source);
    return Tensor.streamed(DataType.FLOAT16, source.dims(), () -> {
      ByteBuffer half = ByteBuffer.allocate(Math.toIntExact(source.byteSize() / 2)).order(ByteOrder.LITTLE_ENDIAN);
      Scratch scratch = SCRATCH.get();
      long[] clamped = {0};
      forEachChunk(source, scratch, chunk -> clamped[0] += convert(chunk, half, scratch));
      counts.record(name, clamped[0]);
      half.flip();
      return half.asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
    }, channel -> {
      Scratch scratch = SCRATCH.get();
      long[] clamped = {0};
      Writes writes = new Writes(channel);
      try {
        forEachChunk(source, scratch, chunk -> {
          // A chunk holds at most CHUNK_FLOATS floats (the scratch's or a slice of an in-memory buffer).
          while (chunk.hasRemaining()) {
            ByteBuffer piece = chunk.slice().order(ByteOrder.LITTLE_ENDIAN);
            piece.limit(Math.min(piece.limit(), CHUNK_FLOATS * 4));
            chunk.position(chunk.position() + piece.limit());
            ByteBuffer halves = scratch.halves[writes.count() % 2].clear();
            clamped[0] += convert(piece, halves, scratch);
            writes.submit(halves.flip());
          }
        });
      } finally {
        writes.finish();
      }
      counts.record(name, clamped[0]);
    });
  }

  /**
   * Background threads for the conversions' writes, one per conversion streaming at the time (the model writer runs
   * several side by side; one shared thread made them wait on each other's writes); daemons, so they never keep the
   * JVM alive.
   */
  private static final ExecutorService WRITER = Executors.newCachedThreadPool(task -> {
    Thread thread = new Thread(task, "kiln-fp16-writer");
    thread.setDaemon(true);
    return thread;
  });

  /**
   * A tensor's writes, in order, on the writer thread: chunk k is written while chunk k+1 is read and converted
   * (the page-cache copy of a write costs about as much as the conversion). At most one write is in flight, so two
   * buffers suffice and the bytes land in the channel in exactly the order, and at exactly the positions, that
   * writing them inline would give; {@link #finish} returns only when all are written.
   */
  private static final class Writes {
    private final WritableByteChannel channel;
    private Future<?> pending;
    private int count;

    Writes(WritableByteChannel channel) {
      this.channel = channel;
    }

    int count() {
      return count;
    }

    void submit(ByteBuffer data) throws IOException {
      await();
      count++;
      pending = WRITER.submit(() -> {
        write(channel, data);
        return null;
      });
    }

    void finish() throws IOException {
      await();
    }

    private void await() throws IOException {
      if (pending == null) {
        return;
      }
      Future<?> last = pending;
      pending = null;
      try {
        last.get();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new java.io.InterruptedIOException("interrupted while writing float16 data");
      } catch (ExecutionException e) {
        if (e.getCause() instanceof IOException io) {
          throw io;
        }
        throw new IOException("cannot write float16 data: " + e.getCause(), e.getCause());
      }
    }
  }

  private interface ChunkConsumer {
    void accept(ByteBuffer chunk) throws IOException;
  }

  /**
   * Hands the little-endian float32 bytes of {@code source} to {@code consumer} in order: an external tensor in
   * scratch-sized positional reads of its file (no map, so no page of it stays in the resident set), anything else in
   * the pieces its {@link Tensor#writeTo} writes (an in-memory buffer as one piece).
   */
  private static void forEachChunk(Tensor source, Scratch scratch, ChunkConsumer consumer) {
    try {
      if (source instanceof ExternalTensor external) {
        try (FileChannel file = FileChannel.open(external.file(), StandardOpenOption.READ)) {
          long done = 0;
          while (done < external.length()) {
            ByteBuffer floats = scratch.floats.clear();
            floats.limit((int) Math.min(floats.capacity(), external.length() - done));
            while (floats.hasRemaining()) {
              if (file.read(floats, external.offset() + done + floats.position()) < 0) {
                throw new IOException("data file ended after " + (external.offset() + done + floats.position())
                    + " bytes; tensor needs " + (external.offset() + external.length()));
              }
            }
            done += floats.limit();
            consumer.accept(floats.flip());
          }
        }
      } else {
        // A tensor computed in memory streams itself: an OHWI filter in transposed blocks, never whole.
        source.writeTo(new WritableByteChannel() {
          @Override
          public int write(ByteBuffer chunk) throws IOException {
            int count = chunk.remaining();
            if (count % 4 != 0) {
              throw new IOException("a float32 chunk of " + count + " bytes (not whole floats)");
            }
            consumer.accept(chunk.order(ByteOrder.LITTLE_ENDIAN));
            chunk.position(chunk.limit());
            return count;
          }

          @Override
          public boolean isOpen() {
            return true;
          }

          @Override
          public void close() {}
        });
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot convert " + source + " to float16: " + e.getMessage(), e);
    }
  }

  private static void write(WritableByteChannel channel, ByteBuffer data) throws IOException {
    while (data.hasRemaining()) {
      channel.write(data);
    }
  }

  /** A small tensor (Constant attribute) converted now. */
  static Tensor half(Tensor source) {
    float[] values = source.floats();
    short[] halves = new short[values.length];
    int[] bits = new int[values.length];
    for (int i = 0; i < values.length; i++) {
      bits[i] = Float.floatToRawIntBits(values[i]);
    }
    convert(bits, halves, values.length);
    ByteBuffer data = ByteBuffer.allocate(values.length * 2).order(ByteOrder.LITTLE_ENDIAN);
    data.asShortBuffer().put(halves);
    return Tensor.ofBytes(DataType.FLOAT16, source.dims(), data);
  }
}
