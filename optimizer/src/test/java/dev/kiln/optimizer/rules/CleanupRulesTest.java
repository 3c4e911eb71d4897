package dev.kiln.optimizer.rules;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.graph.Attribute;
import dev.kiln.graph.DataType;
import dev.kiln.graph.Model;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import dev.kiln.optimizer.cleanups.IdentityElimination;
import dev.kiln.optimizer.cleanups.NoOpCastElimination;
import dev.kiln.optimizer.cleanups.NoOpReshapeElimination;
import dev.kiln.optimizer.cleanups.UnitArithmeticElimination;
import dev.kiln.optimizer.engine.DriverReport;
import dev.kiln.optimizer.passes.ConstantFolding;
import dev.kiln.optimizer.passes.ShapeReadRerooting;
import dev.kiln.optimizer.passes.ShapeSubexpressionElimination;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class CleanupRulesTest {
  private static final Shape SHAPE = Shape.of(Shape.symbolic("batch"), Shape.known(3), Shape.known(4));
  private static final Map<String, Long> DIMS = Map.of("batch", 2L);

  private static SmallGraph chain(java.util.function.BiFunction<SmallGraph, Value, Value> middle) {
    SmallGraph g = new SmallGraph(17, "/block/");
    Value x = g.input("x", SHAPE);
    Value y = middle.apply(g, g.op(Onnx.RELU, x));
    g.output(g.op(Onnx.SIGMOID, y), "y", SHAPE);
    return g;
  }

  private static void assertRemoved(SmallGraph g, dev.kiln.optimizer.engine.Rule rule, String golden) {
    Model before = RuleTestSupport.copy(g.model);
    String printed = RuleTestSupport.print(g.model);
    DriverReport report = RuleTestSupport.apply(g.model, rule);
    assertEquals(1, report.applied(rule.name()));
    assertEquals(List.of("Relu", "Sigmoid"), g.graph.nodes().stream().map(node -> node.opType().name()).toList());
    RuleTestSupport.assertGolden(golden, printed, RuleTestSupport.print(g.model));
    assertEquals(0.0, RuleTestSupport.parity(before, g.model, DIMS));
  }

  @Test
  void identity() {
    assertRemoved(chain((g, x) -> g.op(Onnx.IDENTITY, x)), new IdentityElimination(), "remove-identity");
  }

  @Test
  void identityBetweenAGraphInputAndOutputStays() {
    SmallGraph g = new SmallGraph(17, "/block/");
    g.output(g.op(Onnx.IDENTITY, g.input("x", SHAPE)), "y", SHAPE);
    DriverReport report = RuleTestSupport.apply(g.model, new IdentityElimination());
    assertEquals(Map.of("graph output 'y' would become the graph input or initializer 'x'", 1),
        report.stats("remove-identity").rejections());
  }

  @Test
  void noOpCast() {
    assertRemoved(chain((g, x) -> g.op(Onnx.CAST, List.of(x), Attribute.ofInt("to", DataType.FLOAT.number()))),
        new NoOpCastElimination(), "remove-noop-cast");
  }

  @Test
  void aRealCastStays() {
    SmallGraph g = chain((graph, x) -> graph.op(Onnx.CAST, List.of(graph.op(Onnx.CAST, List.of(x),
        Attribute.ofInt("to", DataType.FLOAT16.number()))), Attribute.ofInt("to", DataType.FLOAT.number())));
    DriverReport report = RuleTestSupport.apply(g.model, new NoOpCastElimination());
    assertEquals(Map.of("casts FLOAT to FLOAT16", 1, "casts FLOAT16 to FLOAT", 1), report.stats("remove-noop-cast").rejections());
  }

  @Test
  void multiplyByOne() {
    assertRemoved(chain((g, x) -> g.op(Onnx.MUL, x, g.scalar(1f))), new UnitArithmeticElimination(), "remove-unit-arithmetic");
  }

  @Test
  void divideByOnesThatBroadcastStays() {
    SmallGraph g = chain((graph, x) -> graph.op(Onnx.DIV, x, graph.filled("ones", 1f, 2, 1, 3, 4)));
    DriverReport report = RuleTestSupport.apply(g.model, new UnitArithmeticElimination());
    assertEquals(Map.of("the constant 1 has higher rank than the input and would broadcast it", 1),
        report.stats("remove-unit-arithmetic").rejections());
  }

  @Test
  void reshapeToTheSameShape() {
    assertRemoved(chain((g, x) -> g.op(Onnx.RESHAPE, x, g.longs(0, 3, 4))), new NoOpReshapeElimination(), "remove-noop-reshape");
  }

  @Test
  void aReshapeThatChangesTheShapeStays() {
    SmallGraph g = new SmallGraph(17, "/block/");
    Value reshaped = g.op(Onnx.RESHAPE, g.op(Onnx.RELU, g.input("x", SHAPE)), g.longs(0, 4, 3));
    g.output(g.op(Onnx.SIGMOID, reshaped), "y", Shape.of(Shape.symbolic("batch"), Shape.known(4), Shape.known(3)));
    DriverReport report = RuleTestSupport.apply(g.model, new NoOpReshapeElimination());
    assertEquals(Map.of("changes the shape (or cannot be shown not to)", 1), report.stats("remove-noop-reshape").rejections());
  }

  /** x → Reshape(x, [batch, 12]) twice, targets computed the torch way from Shape(Relu(x)). */
  private static SmallGraph shapeArithmetic() {
    SmallGraph g = new SmallGraph(17, "/block/");
    Value x = g.op(Onnx.RELU, g.input("x", SHAPE));
    Value first = null;
    for (int copy = 0; copy < 2; copy++) {
      Value size = g.op(Onnx.SHAPE, x);
      Value batch = g.op(Onnx.UNSQUEEZE, g.op(Onnx.GATHER, size, g.constantNode(Tensor.ofLongs(new long[0], 0))), g.longs(0));
      Value channels = g.op(Onnx.UNSQUEEZE, g.op(Onnx.GATHER, size, g.constantNode(Tensor.ofLongs(new long[0], 1))), g.longs(0));
      Value width = g.op(Onnx.MUL, channels, g.longs(4));
      Value target = g.op(Onnx.CONCAT, List.of(batch, width), Attribute.ofInt("axis", 0));
      Value reshaped = g.op(Onnx.RESHAPE, x, target);
      first = first == null ? reshaped : g.op(Onnx.ADD, first, reshaped);
    }
    g.output(first, "y", Shape.of(Shape.symbolic("batch"), Shape.known(12)));
    return g;
  }

  @Test
  void shapePassesRerootMergeAndFold() {
    SmallGraph g = shapeArithmetic();
    Model before = RuleTestSupport.copy(g.model);
    String printed = RuleTestSupport.print(g.model);
    int nodesBefore = g.graph.nodes().size();
    assertEquals(2, new ShapeReadRerooting().run(g.model), "both batch reads move onto the graph input");
    int merged = new ShapeSubexpressionElimination().run(g.model);
    assertTrue(merged >= 8, "merged " + merged);
    int folded = new ConstantFolding().run(g.model);
    assertEquals(6, folded, "channels (3), its unsqueeze ([3]) and the width 3*4 ([12]) are known: 6 nodes folded away");
    dev.kiln.graph.Verifier.verify(g.model);
    assertEquals(List.of("Relu", "Shape", "Gather", "Constant", "Unsqueeze", "Concat", "Reshape", "Reshape", "Add"),
        g.graph.nodes().stream().map(node -> node.opType().name()).toList(), "from " + nodesBefore + " nodes");
    RuleTestSupport.assertGolden("shape-passes", printed, RuleTestSupport.print(g.model));
    assertEquals(0.0, RuleTestSupport.parity(before, g.model, DIMS));
    assertEquals(0, new ShapeSubexpressionElimination().run(g.model), "idempotent");
    assertEquals(0, new ConstantFolding().run(g.model), "idempotent");
  }
}
