package dev.kiln.graph.infer;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kiln.graph.Attribute;
import dev.kiln.graph.DataType;
import dev.kiln.graph.Graph;
import dev.kiln.graph.Model;
import dev.kiln.graph.Node;
import dev.kiln.graph.OpType;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Value;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class PoolShapesTest {
  private static Shape pooled(String op, Shape input, Attribute... attributes) {
    Graph graph = new Graph("pool");
    Value x = graph.addInput("x", DataType.FLOAT, Shape.of(Shape.symbolic("n"), Shape.known(3), Shape.symbolic("h"),
        Shape.symbolic("w")));
    Node node = Node.create(OpType.onnx(op), "/pool", List.of(x), "y");
    for (Attribute attribute : attributes) {
      node.setAttribute(attribute);
    }
    graph.append(node);
    graph.addOutput(node.output());
    Model model = new Model(8, graph);
    model.opsetImports().put("", 17L);
    return ShapeInference.of(model, Map.of(x, input)).shape(node.output());
  }

  @Test
  void averagePoolHalvesAndCeilModeRoundsUp() {
    Attribute kernel = Attribute.ofInts("kernel_shape", 2, 2);
    Attribute strides = Attribute.ofInts("strides", 2, 2);
    assertEquals(Shape.of(1, 3, 4, 5), pooled("AveragePool", Shape.of(1, 3, 8, 11), kernel, strides));
    assertEquals(Shape.of(1, 3, 4, 6), pooled("AveragePool", Shape.of(1, 3, 8, 11), kernel, strides,
        Attribute.ofInt("ceil_mode", 1)));
    assertEquals(Shape.of(Shape.symbolic("n"), Shape.known(3), Shape.symbolic("4*h"), Shape.symbolic("2*w")),
        pooled("MaxPool", Shape.of(Shape.symbolic("n"), Shape.known(3), Shape.symbolic("8*h"), Shape.symbolic("4*w")),
            kernel, strides));
    assertEquals(Shape.of(1, 3, 1, 1), pooled("GlobalAveragePool", Shape.of(1, 3, 8, 11)));
  }
}
