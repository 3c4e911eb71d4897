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
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The packed QKV (and KV) weight streams in blocks of rows read from the parts' files: streamed, whole and an
 * element-by-element interleave agree, for a weight of several blocks (the last partial), in a file and in memory.
 */
class PackedWeightsTest {
  @TempDir Path folder;

  private static float[] values(int count, long seed) {
    Random random = new Random(seed);
    float[] values = new float[count];
    for (int i = 0; i < count; i++) {
      values[i] = (float) random.nextGaussian();
    }
    return values;
  }

  /** packed[c, (head·parts + part)·H + h] = part[c, head·H + h]. */
  private static float[] reference(List<float[]> parts, int channels, int heads, int headSize) {
    int width = heads * headSize;
    float[] packed = new float[channels * width * parts.size()];
    for (int c = 0; c < channels; c++) {
      for (int head = 0; head < heads; head++) {
        for (int part = 0; part < parts.size(); part++) {
          for (int h = 0; h < headSize; h++) {
            packed[c * width * parts.size() + (head * parts.size() + part) * headSize + h] = parts.get(part)[c * width + head * headSize + h];
          }
        }
      }
    }
    return packed;
  }

  private static float[] floats(ByteBuffer bytes) {
    float[] values = new float[bytes.remaining() / 4];
    bytes.order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(values);
    return values;
  }

  private void check(int parts, int channels, int heads, int headSize) throws IOException {
    int width = heads * headSize;
    List<float[]> values = new ArrayList<>();
    List<Tensor> inFiles = new ArrayList<>();
    List<Tensor> inMemory = new ArrayList<>();
    for (int part = 0; part < parts; part++) {
      float[] weights = values(channels * width, part * 101L + channels);
      values.add(weights);
      Tensor tensor = Tensor.ofFloats(new long[] {channels, width}, weights);
      inMemory.add(tensor);
      Path file = folder.resolve("part" + part + "-" + channels + ".data");
      byte[] bytes = new byte[8 + channels * width * 4];
      tensor.bytes().get(bytes, 8, channels * width * 4);
      Files.write(file, bytes);
      inFiles.add(ExternalTensor.of(file, 8, channels * width * 4L, DataType.FLOAT, new long[] {channels, width}));
    }
    float[] expected = reference(values, channels, heads, headSize);
    for (List<Tensor> sources : List.of(inFiles, inMemory)) {
      Tensor packed = UnetAttentionFusion.packedWeights(sources, heads, headSize);
      assertArrayEquals(new long[] {channels, (long) width * parts}, packed.dims());
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      packed.writeTo(Channels.newChannel(out));
      assertArrayEquals(expected, floats(ByteBuffer.wrap(out.toByteArray())), "streamed");
      assertArrayEquals(expected, floats(packed.bytes()), "whole");
    }
  }

  @Test
  void aPackedWeightOfSeveralBlocksInterleavesEachHeadsColumnsOfEachPart() throws IOException {
    int rowBytes = 8 * 40 * 4 * 3;
    assertTrue(StreamedWeights.BLOCK_BYTES / rowBytes * 2 < 600, "several blocks");
    check(3, 600, 8, 40);
    check(2, 700, 5, 64);
    check(3, 4, 2, 3);
  }
}
