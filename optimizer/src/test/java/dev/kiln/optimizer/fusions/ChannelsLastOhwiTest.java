package dev.kiln.optimizer.fusions;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.graph.DataType;
import dev.kiln.graph.ExternalTensor;
import dev.kiln.graph.Tensor;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.Channels;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The OHWI filter streams in blocks of output channels read from the weight's file: its streamed bytes, its whole
 * bytes and an element-by-element transpose agree, for a filter of several blocks (and a last, partial one), one
 * smaller than a block, one whose single output channel is larger than a block, in memory and in a file, float32
 * and float16.
 */
class ChannelsLastOhwiTest {
  @TempDir Path folder;

  private static byte[] oihwBytes(int out, int in, int height, int width, int elementSize, long seed) {
    byte[] bytes = new byte[out * in * height * width * elementSize];
    new Random(seed).nextBytes(bytes);
    return bytes;
  }

  /** Element [o, y, x, i] of OHWI is element [o, i, y, x] of OIHW, moved as whole elements. */
  private static byte[] reference(byte[] oihw, int out, int in, int height, int width, int elementSize) {
    byte[] ohwi = new byte[oihw.length];
    int to = 0;
    for (int o = 0; o < out; o++) {
      for (int y = 0; y < height; y++) {
        for (int x = 0; x < width; x++) {
          for (int i = 0; i < in; i++) {
            int from = (((o * in + i) * height + y) * width + x) * elementSize;
            System.arraycopy(oihw, from, ohwi, to, elementSize);
            to += elementSize;
          }
        }
      }
    }
    return ohwi;
  }

  private static byte[] streamed(Tensor tensor) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    tensor.writeTo(Channels.newChannel(out));
    return out.toByteArray();
  }

  private static byte[] whole(Tensor tensor) {
    ByteBuffer bytes = tensor.bytes();
    byte[] copy = new byte[bytes.remaining()];
    bytes.get(copy);
    return copy;
  }

  private void check(int out, int in, int height, int width, DataType type) throws IOException {
    int elementSize = type.elementSize();
    byte[] oihw = oihwBytes(out, in, height, width, elementSize, out * 31L + in);
    byte[] expected = reference(oihw, out, in, height, width, elementSize);
    long[] dims = {out, in, height, width};
    // In a file after some other bytes, as an external weight sits in its model's data file.
    Path file = folder.resolve("weights-" + out + "-" + in + "-" + type + ".data");
    byte[] withPrefix = new byte[oihw.length + 100];
    System.arraycopy(oihw, 0, withPrefix, 100, oihw.length);
    Files.write(file, withPrefix);
    Tensor[] sources = {ExternalTensor.of(file, 100, oihw.length, type, dims),
        Tensor.ofBytes(type, dims, ByteBuffer.wrap(oihw).order(ByteOrder.LITTLE_ENDIAN))};
    for (Tensor source : sources) {
      Tensor ohwi = ChannelsLast.ohwi(source);
      assertArrayEquals(new long[] {out, height, width, in}, ohwi.dims());
      assertArrayEquals(expected, streamed(ohwi), "streamed from " + source);
      assertArrayEquals(expected, whole(ohwi), "whole from " + source);
      assertArrayEquals(expected, streamed(ohwi), "streamed again from " + source);
    }
  }

  @Test
  void aFilterOfSeveralBlocksStreamsTheSameBytesAsAnElementwiseTranspose() throws IOException {
    int filterBytes = 300 * 3 * 3 * 4;
    int perBlock = StreamedWeights.BLOCK_BYTES / filterBytes;
    assertTrue(perBlock * 2 < 250 && perBlock * 3 > 250 - 1, "three blocks, the last partial: " + perBlock);
    check(250, 300, 3, 3, DataType.FLOAT);
  }

  @Test
  void smallFiltersOneChannelLargerThanABlockAndFloat16AllAgree() throws IOException {
    check(6, 4, 3, 3, DataType.FLOAT);
    check(3, 70_000, 2, 2, DataType.FLOAT);
    check(5, 2, 1, 1, DataType.FLOAT);
    check(40, 33, 3, 3, DataType.FLOAT16);
    check(2, 3, 3, 3, DataType.DOUBLE);
  }
}
