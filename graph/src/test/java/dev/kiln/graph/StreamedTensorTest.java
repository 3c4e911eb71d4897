package dev.kiln.graph;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A streamed computed tensor: the writer takes its streamer's pieces, everyone else its supplier's whole buffer. */
class StreamedTensorTest {
  @TempDir Path folder;

  private static ByteBuffer ramp(int count) {
    ByteBuffer data = ByteBuffer.allocate(count * 4).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < count; i++) {
      data.putFloat(i);
    }
    return data.flip();
  }

  private static Model model(Tensor weight) {
    Graph graph = new Graph("g");
    Value x = graph.addInput("x", DataType.FLOAT, Shape.of(1 << 18));
    Value w = graph.addInitializer("w", weight);
    Node add = Node.create(Onnx.ADD, "/add", List.of(x, w), "y");
    graph.append(add);
    add.output().setType(DataType.FLOAT, Shape.of(1 << 18));
    graph.addOutput(add.output());
    Model model = new Model(8, graph);
    model.opsetImports().put("", 17L);
    return model;
  }

  @Test
  void theWriterStreamsPiecesAndTheFileHoldsTheSuppliersBytes() throws Exception {
    int count = 1 << 18;
    int[] streamed = {0};
    Tensor weight = Tensor.streamed(DataType.FLOAT, new long[] {count}, () -> ramp(count), channel -> {
      ByteBuffer all = ramp(count);
      while (all.hasRemaining()) {
        ByteBuffer piece = all.slice();
        piece.limit(Math.min(piece.limit(), 100_000));
        all.position(all.position() + piece.limit());
        while (piece.hasRemaining()) {
          channel.write(piece);
        }
        streamed[0]++;
      }
    });
    assertEquals(ramp(count), weight.bytes(), "bytes() answers the supplier's buffer");
    Path file = folder.resolve("model.onnx");
    ModelWriter.write(model(weight), file);
    assertEquals(11, streamed[0], "1 MiB in 100,000-byte pieces");
    Tensor read = ModelReader.read(file).graph().findValue("w").initializer();
    assertTrue(read instanceof ExternalTensor);
    assertArrayEquals(Tensor.ofBytes(DataType.FLOAT, new long[] {count}, ramp(count)).floats(), read.floats());
  }

  @Test
  void aStreamerThatWritesTheWrongLengthFailsTheWriteAndLeavesNoFile() {
    int count = 1 << 18;
    Tensor weight = Tensor.streamed(DataType.FLOAT, new long[] {count}, () -> ramp(count),
        channel -> channel.write(ByteBuffer.allocate(12)));
    Path file = folder.resolve("model.onnx");
    UncheckedIOException error = assertThrows(UncheckedIOException.class, () -> ModelWriter.write(model(weight), file));
    assertTrue(error.getMessage().contains("expected"), error.getMessage());
    assertTrue(!Files.exists(file) && !Files.exists(folder.resolve("model.onnx.data")));
  }
}
