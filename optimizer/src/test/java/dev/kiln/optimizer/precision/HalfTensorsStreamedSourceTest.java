package dev.kiln.optimizer.precision;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.graph.DataType;
import dev.kiln.graph.Tensor;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.Channels;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * A float32 source computed in memory that streams itself (an OHWI filter does, in blocks) is converted piece by
 * piece as it streams, never whole: the float16 bytes and clamp count are those of converting its whole buffer, for
 * pieces of uneven sizes, larger and smaller than a conversion chunk.
 */
class HalfTensorsStreamedSourceTest {
  private static final int COUNT = HalfTensors.CHUNK_FLOATS + 123_457;

  private static ByteBuffer floats() {
    Random random = new Random(7);
    ByteBuffer data = ByteBuffer.allocate(COUNT * 4).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < COUNT; i++) {
      // Weight-like values with some beyond float16's range and some too small for it.
      float value = (float) (random.nextGaussian() * (i % 1000 == 0 ? 1e5 : i % 777 == 0 ? 1e-9 : 0.02));
      data.putFloat(value);
    }
    return data.flip().asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
  }

  /** Streams {@code data} in pieces cycling through {@code sizes} (bytes). */
  private static Tensor streamedSource(ByteBuffer data, int... sizes) {
    return Tensor.streamed(DataType.FLOAT, new long[] {COUNT}, data::duplicate, channel -> {
      ByteBuffer rest = data.duplicate();
      for (int piece = 0; rest.hasRemaining(); piece++) {
        ByteBuffer slice = rest.duplicate();
        slice.limit(Math.min(rest.limit(), rest.position() + sizes[piece % sizes.length]));
        rest.position(slice.limit());
        while (slice.hasRemaining()) {
          channel.write(slice);
        }
      }
    });
  }

  private static byte[] written(Tensor tensor) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    tensor.writeTo(Channels.newChannel(out));
    return out.toByteArray();
  }

  @Test
  void aStreamedSourceConvertsToTheBytesAndCountsOfItsWholeBuffer() throws IOException {
    ByteBuffer data = floats();
    ClampCounts wholeCounts = new ClampCounts();
    byte[] expected = written(HalfTensors.lazyHalf(Tensor.ofBytes(DataType.FLOAT, new long[] {COUNT}, data.duplicate()), "w",
        wholeCounts));
    long clamped = wholeCounts.get("w");
    assertTrue(clamped > 500, "the fixture clamps: " + clamped);
    int[][] pieceSizes = {{4, 40_000}, {1 << 20}, {HalfTensors.CHUNK_FLOATS * 4 + 4, 12, 4000}, {COUNT * 4}, {36, 1_000_004, 8}};
    for (int[] sizes : pieceSizes) {
      ClampCounts counts = new ClampCounts();
      Tensor half = HalfTensors.lazyHalf(streamedSource(data, sizes), "w", counts);
      assertArrayEquals(expected, written(half), "pieces of " + sizes[0] + " bytes");
      assertEquals(Map.of("w", clamped), Map.copyOf(counts));
      ByteBuffer whole = half.bytes();
      byte[] wholeBytes = new byte[whole.remaining()];
      whole.get(wholeBytes);
      assertArrayEquals(expected, wholeBytes, "all bytes at once, pieces of " + sizes[0]);
    }
  }

  @Test
  void aPieceThatSplitsAFloatIsRefused() {
    Tensor half = HalfTensors.lazyHalf(streamedSource(floats(), 4, 6), "w", new ClampCounts());
    UncheckedIOException failure = assertThrows(UncheckedIOException.class, () -> written(half));
    assertTrue(failure.getMessage().contains("not whole floats"), failure.getMessage());
  }
}
