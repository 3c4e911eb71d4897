package dev.kiln.optimizer.rules;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.graph.Attribute;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Value;
import dev.kiln.optimizer.engine.Constants;
import dev.kiln.optimizer.passes.ConstantFolding;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Attention scales computed from the graph become constants (ConstantFolding); sizes that are symbolic stay computed. */
class ScalarArithmeticFoldingTest {
  private static final Shape HEADS = Shape.of(Shape.symbolic("batch"), Shape.known(2), Shape.symbolic("sequence"),
      Shape.known(8));

  /** torch 2's SDPA scale: Shape → Slice[-1:] → Cast → Sqrt → Div(1, ·) → Sqrt, multiplying q. */
  @Test
  void sdpaScaleChainFoldsToOneConstant() {
    SmallGraph g = new SmallGraph(14, "/attn1/");
    Value q = g.input("q", HEADS);
    Value headSize = g.op(Onnx.SLICE, g.op(Onnx.SHAPE, q), g.longs(-1), g.longs(Long.MAX_VALUE));
    Value embedding = g.op(Onnx.CAST, List.of(headSize), Attribute.ofInt("to", 1));
    Value scale = g.op(Onnx.DIV, g.constantNode(dev.kiln.graph.Tensor.ofFloats(new long[] {1}, 1f)),
        g.op(Onnx.SQRT, embedding));
    g.output(g.op(Onnx.MUL, q, g.op(Onnx.SQRT, scale)), "y", HEADS);
    var before = RuleTestSupport.copy(g.model);

    assertEquals(9, new ConstantFolding().run(g.model), "the six-op chain and its three Constant nodes");
    assertEquals(List.of("Mul"), g.graph.nodes().stream().map(node -> node.opType().name()).toList());
    Node mul = g.graph.nodes().get(0);
    float folded = (float) Constants.scalar(Constants.tensor(mul.input(1)));
    assertEquals((float) Math.sqrt((float) (1f / (float) Math.sqrt(8f))), folded);
    assertEquals(1, Constants.tensor(mul.input(1)).dims().length, "keeps the [1] shape");
    assertTrue(RuleTestSupport.parity(before, g.model, Map.of("batch", 2L, "sequence", 5L)) == 0);
  }

  /** diffusers-style {@code Pow(Cast(Gather(Shape(q), 3)), -0.5)}; the batch size next to it is left alone. */
  @Test
  void powOfAKnownSizeFoldsAndSymbolicSizesStay() {
    SmallGraph g = new SmallGraph(17, "/attn1/");
    Value q = g.input("q", HEADS);
    Value shape = g.op(Onnx.SHAPE, q);
    Value headSize = g.op(Onnx.GATHER, List.of(shape, g.constantNode(dev.kiln.graph.Tensor.ofLongs(new long[0], 3))),
        Attribute.ofInt("axis", 0));
    Value scale = g.op(Onnx.POW, g.op(Onnx.CAST, List.of(headSize), Attribute.ofInt("to", 1)), g.scalar(-0.5f));
    Value batch = g.op(Onnx.GATHER, List.of(shape, g.constantNode(dev.kiln.graph.Tensor.ofLongs(new long[0], 0))),
        Attribute.ofInt("axis", 0));
    Value batchFloat = g.op(Onnx.CAST, List.of(batch), Attribute.ofInt("to", 1));
    g.output(g.op(Onnx.DIV, g.op(Onnx.MUL, q, scale), batchFloat), "y", HEADS);

    assertEquals(5, new ConstantFolding().run(g.model), "Gather(Shape, 3), Cast, Pow and their two Constant nodes");
    Node mul = g.graph.nodes().stream().filter(node -> node.is(Onnx.MUL)).findFirst().orElseThrow();
    assertEquals((float) Math.pow(8, -0.5), (float) Constants.scalar(Constants.tensor(mul.input(1))));
    assertTrue(g.graph.nodes().stream().anyMatch(node -> node.is(Onnx.CAST)), "Cast(batch) depends on the batch size");
  }
}
