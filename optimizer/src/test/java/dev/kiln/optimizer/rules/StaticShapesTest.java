package dev.kiln.optimizer.rules;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.common.KilnException;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Value;
import dev.kiln.optimizer.passes.ConstantFolding;
import dev.kiln.optimizer.specialize.StaticShapes;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** --static refuses a binding the graph cannot take, naming the node; and binds what it can. */
class StaticShapesTest {
  @Test
  void reshapeThatDoesNotDivideIsRefusedNamingTheNode() {
    SmallGraph g = new SmallGraph(17, "/block/");
    Value x = g.input("x", Shape.of(Shape.symbolic("batch"), Shape.symbolic("tokens")));
    Value heads = g.op(Onnx.RESHAPE, x, g.longs(0, -1, 4));
    g.output(g.op(Onnx.RELU, heads), "y", Shape.of(Shape.symbolic("batch"), Shape.UNKNOWN, Shape.known(4)));
    String node = heads.producer().name();

    KilnException.BadInput refused = assertThrows(KilnException.BadInput.class,
        () -> StaticShapes.apply(g.model, Map.of("batch", 1L, "tokens", 6L), ConstantFolding.DEFAULT_LIMIT_BYTES, "m.onnx"));
    assertTrue(refused.getMessage().contains("'" + node + "'") && refused.getMessage().contains("does not divide"),
        refused.getMessage());
  }

  @Test
  void broadcastConflictIsRefusedNamingTheNode() {
    SmallGraph g = new SmallGraph(17, "/block/");
    Value x = g.input("x", Shape.of(Shape.symbolic("n")));
    Value y = g.input("y", Shape.of(Shape.symbolic("m")));
    Value sum = g.op(Onnx.ADD, x, y);
    g.output(sum, "z", Shape.of(Shape.UNKNOWN));

    KilnException.BadInput refused = assertThrows(KilnException.BadInput.class,
        () -> StaticShapes.apply(g.model, Map.of("n", 2L, "m", 3L), ConstantFolding.DEFAULT_LIMIT_BYTES, "m.onnx"));
    assertTrue(refused.getMessage().contains("'" + sum.producer().name() + "'")
        && refused.getMessage().contains("[2] and [3]"), refused.getMessage());
  }

  @Test
  void bindingFoldsTheShapeReadsAndWritesStaticOutputs() {
    SmallGraph g = new SmallGraph(17, "/block/");
    Value x = g.input("x", Shape.of(Shape.symbolic("batch"), Shape.symbolic("tokens")));
    Value shape = g.op(Onnx.SHAPE, x);
    Value heads = g.op(Onnx.RESHAPE, x, g.op(Onnx.CONCAT, java.util.List.of(
        g.op(Onnx.SLICE, shape, g.longs(0), g.longs(1)), g.longs(-1, 4)), dev.kiln.graph.Attribute.ofInt("axis", 0)));
    g.output(g.op(Onnx.RELU, heads), "y", Shape.of(Shape.symbolic("batch"), Shape.UNKNOWN, Shape.known(4)));

    StaticShapes.apply(g.model, Map.of("batch", 2L, "tokens", 8L), ConstantFolding.DEFAULT_LIMIT_BYTES, "m.onnx");
    assertEquals(java.util.List.of("Reshape", "Relu"), g.graph.nodes().stream().map(node -> node.opType().name()).toList());
    assertEquals(Shape.of(2, 2, 4), g.graph.outputs().get(0).shape());
    assertEquals(Shape.of(2, 8), g.graph.inputs().get(0).shape());
  }
}
