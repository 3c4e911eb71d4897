package dev.kiln.graph;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The data file's tensors are written by several threads, each at its own offset: the file must hold exactly the
 * bytes one writer going in order gives, padding included, whatever the thread count, and a tensor that fails
 * fails the write.
 */
class ModelWriterThreadsTest {
  @TempDir Path folder;

  /**
   * Eleven weights of every storage the writer meets: external ones back to back in their source (one transfer) and
   * out of order (one each), computed ones whole and streamed in small uneven pieces, sizes that leave padding.
   */
  private Model mixedWeights() throws IOException {
    Random random = new Random(11);
    int[] sizes = {5000, 7001, 64, 30_000, 4097, 12_288};
    Path source = folder.resolve("source.data");
    byte[] sourceBytes = new byte[60_000];
    random.nextBytes(sourceBytes);
    Files.write(source, sourceBytes);
    Graph graph = new Graph("mixed");
    Value x = graph.addInput("x", DataType.FLOAT, Shape.of(Shape.symbolic("n")));
    List<Tensor> tensors = new ArrayList<>();
    // Back to back in the source and in order: placed back to back too when aligned, else apart.
    tensors.add(ExternalTensor.of(source, 0, 4096, DataType.FLOAT, new long[] {1024}));
    tensors.add(ExternalTensor.of(source, 4096, 8192, DataType.FLOAT, new long[] {2048}));
    tensors.add(ExternalTensor.of(source, 40_000, 4000, DataType.FLOAT, new long[] {1000}));
    tensors.add(ExternalTensor.of(source, 12_288, 1004, DataType.FLOAT, new long[] {251}));
    for (int size : sizes) {
      float[] values = new float[size];
      for (int i = 0; i < size; i++) {
        values[i] = (float) random.nextGaussian();
      }
      tensors.add(Tensor.ofFloats(new long[] {size}, values));
    }
    int streamedSize = 50_003;
    ByteBuffer streamed = ByteBuffer.allocate(streamedSize * 4).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < streamedSize; i++) {
      streamed.putFloat(i * 0.5f);
    }
    streamed.flip();
    tensors.add(Tensor.streamed(DataType.FLOAT, new long[] {streamedSize}, streamed::duplicate, channel -> {
      ByteBuffer data = streamed.duplicate();
      for (int piece = 0; data.hasRemaining(); piece++) {
        ByteBuffer slice = data.duplicate();
        slice.limit(Math.min(data.limit(), data.position() + 1000 + piece % 7 * 333));
        data.position(slice.limit());
        while (slice.hasRemaining()) {
          channel.write(slice);
        }
      }
    }));
    Value last = x;
    for (int i = 0; i < tensors.size(); i++) {
      Value weight = graph.addInitializer("w" + i, tensors.get(i));
      Node node = Node.create(Onnx.ADD, "add" + i, List.of(last, weight), "y" + i);
      graph.append(node);
      last = node.output();
    }
    graph.addOutput(last);
    Model model = new Model(8, graph);
    model.opsetImports().put("", 17L);
    return model;
  }

  private static List<ProtoEncoder.Placement> placements(Model model, WriteOptions options) {
    ProtoEncoder encoder = new ProtoEncoder(options, "out.data");
    encoder.encodeModel(model);
    return encoder.placements();
  }

  @Test
  void everyThreadCountWritesTheSameBytesAsOneWriterInOrder() throws IOException {
    Model model = mixedWeights();
    WriteOptions options = WriteOptions.externalAbove(1000).withAlignment(4096);
    List<ProtoEncoder.Placement> placements = placements(model, options);
    assertEquals(10, placements.size(), "the 64-float weight stays inline");
    Path serial = Files.createFile(folder.resolve("serial.data"));
    ModelWriter.writeDataFile(serial, placements, 1);
    byte[] expected = Files.readAllBytes(serial);
    ProtoEncoder.Placement end = placements.get(placements.size() - 1);
    assertEquals(end.offset() + end.tensor().byteSize(), expected.length);
    for (ProtoEncoder.Placement placement : placements) {
      ByteBuffer written = ByteBuffer.wrap(expected, (int) placement.offset(), (int) placement.tensor().byteSize());
      ByteBuffer bytes = placement.tensor().readBytes();
      assertEquals(bytes, written.slice(), placement.tensor() + " at " + placement.offset());
    }
    for (int threads : new int[] {2, 3, 8}) {
      for (int run = 0; run < 3; run++) {
        Path parallel = folder.resolve("parallel-" + threads + "-" + run + ".data");
        Files.write(parallel, new byte[] {1, 2, 3}); // a leftover is truncated first
        ModelWriter.writeDataFile(parallel, placements, threads);
        assertArrayEquals(expected, Files.readAllBytes(parallel), threads + " threads, run " + run);
      }
    }
  }

  @Test
  void theModelWriterGivesTheSameFilesWithOneOrManyThreads() throws IOException {
    Model model = mixedWeights();
    String before = System.getProperty("kiln.writeThreads");
    try {
      System.setProperty("kiln.writeThreads", "1");
      ModelWriter.write(model, folder.resolve("one/model.onnx"), WriteOptions.externalAbove(1000));
      System.setProperty("kiln.writeThreads", "4");
      ModelWriter.write(model, folder.resolve("four/model.onnx"), WriteOptions.externalAbove(1000));
    } finally {
      if (before == null) {
        System.clearProperty("kiln.writeThreads");
      } else {
        System.setProperty("kiln.writeThreads", before);
      }
    }
    for (String file : List.of("model.onnx", "model.onnx.data")) {
      assertArrayEquals(Files.readAllBytes(folder.resolve("one").resolve(file)), Files.readAllBytes(folder.resolve("four").resolve(file)), file);
    }
  }

  @Test
  void aTensorThatFailsOnAnyThreadFailsTheWrite() throws IOException {
    Model model = mixedWeights();
    model.graph().findValue("w5").setInitializer(Tensor.streamed(DataType.FLOAT, new long[] {30_000},
        () -> ByteBuffer.allocate(120_000), channel -> {
          throw new IOException("source vanished");
        }));
    List<ProtoEncoder.Placement> placements = placements(model, WriteOptions.externalAbove(1000));
    for (int threads : new int[] {1, 2, 4}) {
      Path target = folder.resolve("failing-" + threads + ".data");
      Files.createFile(target);
      IOException failure = assertThrows(IOException.class, () -> ModelWriter.writeDataFile(target, placements, threads));
      assertTrue(failure.getMessage().contains("source vanished"), failure.getMessage());
    }
    model.graph().findValue("w5").setInitializer(Tensor.computed(DataType.FLOAT, new long[] {30_000}, () -> {
      throw new UncheckedIOException(new IOException("unreadable"));
    }));
    List<ProtoEncoder.Placement> unchecked = placements(model, WriteOptions.externalAbove(1000));
    Path target = folder.resolve("unchecked.data");
    Files.createFile(target);
    assertThrows(UncheckedIOException.class, () -> ModelWriter.writeDataFile(target, unchecked, 3));
  }
}
