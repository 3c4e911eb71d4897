package dev.kiln.graph;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.graph.proto.OnnxProto.ModelProto;
import dev.kiln.graph.proto.OnnxProto.TensorProto;
import java.util.List;
import org.junit.jupiter.api.Test;

/** In-memory copies share large tensors and copy the graph; graph-only bytes carry references, not weights. */
class SharedTensorsTest {
  /** x → MatMul(w: 64×256 floats, 64 KiB) → Add(b: 4 floats) → y. */
  private static Model model() {
    Graph graph = new Graph("g");
    Value x = graph.addInput("x", DataType.FLOAT, Shape.of(1, 64));
    Value w = graph.addInitializer("w", Tensor.ofFloats(new long[] {64, 256}, new float[64 * 256]));
    Value b = graph.addInitializer("b", Tensor.ofFloats(new long[] {4}, 1, 2, 3, 4));
    Node matmul = Node.create(Onnx.MAT_MUL, "/matmul", List.of(x, w), "h");
    Node add = Node.create(Onnx.ADD, "/add", List.of(matmul.output(), b), "y");
    graph.append(matmul);
    graph.append(add);
    graph.addOutput(add.output());
    Model model = new Model(8, graph);
    model.opsetImports().put("", 17L);
    return model;
  }

  @Test
  void aCopySharesLargeTensorsAndOwnsItsGraph() {
    Model model = model();
    Model copy = SharedTensors.copy(model);
    assertSame(model.graph().findValue("w").initializer(), copy.graph().findValue("w").initializer(),
        "64 KiB: shared by reference");
    assertNotSame(model.graph().findValue("b").initializer(), copy.graph().findValue("b").initializer());
    assertArrayEquals(new float[] {1, 2, 3, 4}, copy.graph().findValue("b").initializer().floats());
    copy.graph().findNode("/add").setName("/renamed");
    assertEquals("/add", model.graph().nodes().get(1).name(), "the original graph is untouched");
    assertEquals(2, copy.graph().nodes().size());
    assertTrue(java.util.Arrays.equals(ModelWriter.toBytes(model), ModelWriter.toBytes(SharedTensors.copy(model))),
        "a copy serialises as the original does");
  }

  @Test
  void graphOnlyBytesReferenceLargeInitializersByName() throws Exception {
    SharedTensors.GraphOnly graphOnly = SharedTensors.graphOnly(model(), SharedTensors.DEFAULT_THRESHOLD);
    assertEquals(List.of("w"), List.copyOf(graphOnly.external().keySet()));
    ModelProto proto = ModelProto.parseFrom(graphOnly.proto());
    TensorProto w = proto.getGraph().getInitializerList().stream().filter(t -> t.getName().equals("w")).findFirst().orElseThrow();
    assertEquals(TensorProto.DataLocation.EXTERNAL, w.getDataLocation());
    assertEquals(0, w.getRawData().size());
    assertEquals(SharedTensors.LOCATION, w.getExternalData(0).getValue());
    assertTrue(graphOnly.proto().length < 4096, "no weight bytes: " + graphOnly.proto().length);
  }
}
