package dev.kiln.optimizer.rules;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.common.KilnException;
import dev.kiln.graph.Attribute;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Value;
import dev.kiln.optimizer.engine.Constants;
import dev.kiln.optimizer.passes.ConstantFolding;
import dev.kiln.optimizer.specialize.OutputPruning;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The fold limit bounds what folding makes and reads; --keep-output keeps exactly the named outputs. */
class ConstantFoldingTest {
  @Test
  void resultsOverTheLimitStayComputedAndLargeWeightsAreNeverCopied() {
    SmallGraph g = new SmallGraph(17, "/m/");
    Value x = g.input("x", Shape.of(Shape.symbolic("batch"), Shape.known(512)));
    // A 512x512 float weight is 1 MiB: its transpose is exactly at the default limit, over a 512 KiB one.
    Value weight = g.weights("weight", 512, 512);
    Value transposed = g.op(Onnx.TRANSPOSE, List.of(weight), Attribute.ofInts("perm", 1, 0));
    // Expand of one scalar to 1024x1024 floats (4 MiB) is over the default limit.
    Value big = g.op(Onnx.EXPAND, g.scalar(2f), g.longs(1024, 1024));
    Value small = g.op(Onnx.EXPAND, g.scalar(3f), g.longs(1, 512));
    Value y = g.op(Onnx.ADD, g.op(Onnx.MAT_MUL, x, transposed), small);
    g.output(y, "y", Shape.of(Shape.symbolic("batch"), Shape.known(512)));
    g.output(g.op(Onnx.REDUCE_SUM, List.of(big), Attribute.ofInt("keepdims", 0)), "total", Shape.SCALAR);

    new ConstantFolding(512 * 1024).run(g.model);
    assertTrue(g.graph.nodes().stream().anyMatch(node -> node.is(Onnx.TRANSPOSE)), "a 1 MiB result is over a 512 KiB limit");
    assertTrue(g.graph.nodes().stream().anyMatch(node -> node.is(Onnx.EXPAND) && node.output() == big));
    assertEquals(3f, Constants.tensor(y.producer().input(1)).floats()[511], "the small Expand folds");

    new ConstantFolding().run(g.model);
    assertTrue(g.graph.nodes().stream().noneMatch(node -> node.is(Onnx.TRANSPOSE)), "1 MiB is within the default limit");
    assertTrue(g.graph.nodes().stream().anyMatch(node -> node.is(Onnx.EXPAND)), "4 MiB is not");

    SmallGraph h = new SmallGraph(17, "/m/");
    Value input = h.input("x", Shape.of(Shape.symbolic("batch"), Shape.known(1024)));
    Value large = h.weights("large", 1024, 1024);
    Value cast = h.op(Onnx.CAST, List.of(large), Attribute.ofInt("to", 10));
    h.output(h.op(Onnx.MAT_MUL, h.op(Onnx.CAST, List.of(input), Attribute.ofInt("to", 10)), cast), "y",
        Shape.of(Shape.symbolic("batch"), Shape.known(1024)));
    new ConstantFolding().run(h.model);
    // The fp16 copy would be 2 MiB; folding never reads a 4 MiB weight to make it.
    assertTrue(h.graph.nodes().stream().anyMatch(node -> node.output() == cast));
  }

  @Test
  void keepOutputKeepsExactlyTheNamedOutputsAndRefusesUnknownNames() {
    SmallGraph g = new SmallGraph(17, "/m/");
    Value x = g.input("x", Shape.of(Shape.known(2), Shape.known(4)));
    Value unused = g.input("unused", Shape.of(Shape.known(2)));
    Value a = g.op(Onnx.RELU, x);
    Value b = g.op(Onnx.MAT_MUL, a, g.weights("w", 4, 4));
    g.output(a, "a", Shape.of(2, 4));
    g.output(b, "b", Shape.of(2, 4));
    g.output(g.op(Onnx.NEG, unused), "c", Shape.of(2));

    OutputPruning.Removed removed = OutputPruning.keepOutputs(g.model, List.of("a"), "m.onnx");
    assertEquals(List.of("a"), g.graph.outputs().stream().map(Value::name).toList());
    assertEquals(new OutputPruning.Removed(2, 1, 64, 1), removed);
    assertEquals(List.of("x"), g.graph.inputs().stream().map(Value::name).toList());

    KilnException.BadInput refused = assertThrows(KilnException.BadInput.class,
        () -> OutputPruning.keepOutputs(g.model, List.of("pooled"), "m.onnx"));
    assertTrue(refused.getMessage().contains("'pooled' is not an output"), refused.getMessage());
  }
}
