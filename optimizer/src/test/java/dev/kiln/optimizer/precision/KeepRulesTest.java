package dev.kiln.optimizer.precision;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.graph.Attribute;
import dev.kiln.graph.DataType;
import dev.kiln.graph.Graph;
import dev.kiln.graph.Model;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.OpType;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * One test per decision rule of mixed precision (and of the fixed-threshold comparison), positive and negative, on
 * small graphs with hand-set ranges: what a calibration run would have measured.
 */
class KeepRulesTest {
  /** x[1,8] → op → y, with the float ranges given per value name. */
  private static Model single(OpType type, Attribute... attributes) {
    Graph graph = new Graph("g");
    Value x = graph.addInput("x", DataType.FLOAT, Shape.of(1, 8));
    Node node = Node.create(type, "/op", List.of(x), "y");
    for (Attribute attribute : attributes) {
      node.setAttribute(attribute);
    }
    graph.append(node);
    node.output().setType(DataType.FLOAT, null);
    graph.addOutput(node.output());
    return model(graph);
  }

  /** x → Mul(w) "/scale" → op "/op" → y: the argument of op is made by a node. */
  private static Model produced(OpType type) {
    Graph graph = new Graph("g");
    Value x = graph.addInput("x", DataType.FLOAT, Shape.of(1, 8));
    Value w = graph.addInitializer("w", Tensor.ofFloats(new long[] {1}, 1000f));
    Node scale = Node.create(Onnx.MUL, "/scale", List.of(x, w), "argument");
    graph.append(scale);
    Node node = Node.create(type, "/op", List.of(scale.output()), "y");
    graph.append(node);
    node.output().setType(DataType.FLOAT, null);
    graph.addOutput(node.output());
    return model(graph);
  }

  private static Model model(Graph graph) {
    Model model = new Model(8, graph);
    model.opsetImports().put("", 17L);
    model.opsetImports().put("com.microsoft", 1L);
    return model;
  }

  private static Map<String, MixedPrecision.Range> ranges(Object... nameAndPeak) {
    Map<String, MixedPrecision.Range> ranges = new LinkedHashMap<>();
    for (int i = 0; i < nameAndPeak.length; i += 2) {
      MixedPrecision.Range range = new MixedPrecision.Range();
      range.add(new float[] {(float) (double) (Double) nameAndPeak[i + 1], 0.5f});
      ranges.put((String) nameAndPeak[i], range);
    }
    return ranges;
  }

  private static Map<String, PrecisionReport.KeptNode> decide(Model model, Map<String, MixedPrecision.Range> ranges) {
    return KeepRules.decide(model, ranges, Map.of());
  }

  @Test
  void overflowKeepsAWriterAboveHalfOfFloat16sMaximumAndNotBelow() {
    Map<String, PrecisionReport.KeptNode> kept = decide(single(Onnx.RELU), ranges("x", 10.0, "y", 40000.0));
    assertEquals(Set.of("/op"), kept.keySet());
    assertTrue(kept.get("/op").reason().startsWith("overflow: Relu output 'y' reaches 4.000e+04"), kept.toString());
    assertEquals(40000.0, kept.get("/op").maxAbs());
    // 30000 fits float16 with the margin of two (65504 / 2 = 32752): float16.
    assertTrue(decide(single(Onnx.RELU), ranges("x", 10.0, "y", 30000.0)).isEmpty());
  }

  @Test
  void overflowKeepsAReaderOfAnOverflowingValueButNotOfAnInitializer() {
    Map<String, PrecisionReport.KeptNode> kept = decide(single(Onnx.RELU), ranges("x", 50000.0, "y", 1.0));
    assertTrue(kept.get("/op").reason().startsWith("overflow: reads 'x' reaching 5.000e+04"), kept.toString());
    // The same peak in a weight is not a stored activation: the conversion clamps weights and counts them.
    Model model = produced(Onnx.RELU);
    model.graph().findValue("w").setInitializer(Tensor.ofFloats(new long[] {1}, 50000f));
    assertTrue(decide(model, ranges("x", 1.0, "argument", 1.0, "y", 1.0)).isEmpty());
  }

  @Test
  void accumulationKeepsAMeanWhoseRunningSumOverflows() {
    Model model = single(Onnx.REDUCE_MEAN, Attribute.ofInts("axes", new long[] {1}), Attribute.ofInt("keepdims", 1));
    MixedPrecision.Range input = new MixedPrecision.Range();
    input.add(new float[4096]);
    MixedPrecision.Range output = new MixedPrecision.Range();
    output.add(new float[] {10f});
    // 4096 elements averaged to 10: the sum reaches 40960 > 32752.
    Map<String, PrecisionReport.KeptNode> kept = decide(model, Map.of("x", input, "y", output));
    assertTrue(kept.get("/op").reason().startsWith("accumulation: reduction over 4096 elements, its running sum reaches"),
        kept.toString());
    output = new MixedPrecision.Range();
    output.add(new float[] {5f});
    assertTrue(decide(model, Map.of("x", input, "y", output)).isEmpty(), "a sum of 20480 fits");
  }

  @Test
  void accumulationKeepsAFusedOpWhoseIntermediateOverflows() {
    Model model = single(dev.kiln.graph.Microsoft.GROUP_NORM);
    MixedPrecision.Range squares = new MixedPrecision.Range();
    squares.add(new float[] {9e4f});
    Map<String, List<KeepRules.Internal>> internals = Map.of("/op",
        List.of(new KeepRules.Internal("/op/Mul_output_0", "Mul", "x", squares)));
    Map<String, PrecisionReport.KeptNode> kept = KeepRules.decide(model, ranges("x", 300.0, "y", 3.0), internals);
    assertTrue(kept.get("/op").reason().startsWith("accumulation inside the fused op: its Mul intermediate "
        + "'/op/Mul_output_0' reaches 9.000e+04"), kept.toString());
    squares = new MixedPrecision.Range();
    squares.add(new float[] {9e3f});
    assertTrue(KeepRules.decide(model, ranges("x", 30.0, "y", 3.0), Map.of("/op",
        List.of(new KeepRules.Internal("/op/Mul_output_0", "Mul", "x", squares)))).isEmpty());
  }

  @Test
  void absoluteErrorKeepsASinOfALargeArgumentAndItsProducer() {
    // 981 · 2^-11 = 0.479: float16 would lose the phase; the Mul making the argument stays float32 with it.
    Map<String, PrecisionReport.KeptNode> kept = decide(produced(Onnx.SIN),
        ranges("x", 0.981, "argument", 981.0, "y", 1.0));
    assertEquals(List.of("/scale", "/op"), List.copyOf(kept.keySet()));
    assertTrue(kept.get("/op").reason().contains("phase error"), kept.toString());
    assertTrue(kept.get("/scale").reason().startsWith("makes the argument of '/op'"), kept.toString());
    // An argument up to 20 (rounding 0.0098) stays float16.
    assertTrue(decide(produced(Onnx.SIN), ranges("x", 0.02, "argument", 20.0, "y", 1.0)).isEmpty());
  }

  @Test
  void absoluteErrorKeepsASoftmaxOfLargeLogitsAndNotOfSmallOnes() {
    Model model = single(Onnx.SOFTMAX, Attribute.ofInt("axis", -1));
    Map<String, PrecisionReport.KeptNode> kept = decide(model, ranges("x", 40.0, "y", 1.0));
    assertTrue(kept.get("/op").reason().contains("a relative error of the probabilities"), kept.toString());
    assertTrue(decide(model, ranges("x", 12.0, "y", 1.0)).isEmpty());
  }

  @Test
  void absoluteErrorKeepsAFusedAttentionWhoseScoresAreLarge() {
    Model model = single(dev.kiln.graph.Microsoft.MULTI_HEAD_ATTENTION);
    MixedPrecision.Range scores = new MixedPrecision.Range();
    scores.add(new float[] {31.3f, -12f});
    MixedPrecision.Range probabilities = new MixedPrecision.Range();
    probabilities.add(new float[] {1f});
    List<KeepRules.Internal> internal = List.of(
        new KeepRules.Internal("/op/Mul_output_0", "Mul", "/op/MatMul_output_0", scores),
        new KeepRules.Internal("/op/Softmax_output_0", "Softmax", "/op/Mul_output_0", probabilities));
    Map<String, PrecisionReport.KeptNode> kept = KeepRules.decide(model, ranges("x", 3.0, "y", 3.0),
        Map.of("/op", internal));
    assertEquals(Set.of("/op"), kept.keySet(), "the fused node only: its inputs are no argument of a float16 op");
    assertTrue(kept.get("/op").reason().startsWith("absolute error inside the fused op: its softmax input "
        + "'/op/Mul_output_0' reaches 31.3"), kept.toString());
    scores = new MixedPrecision.Range();
    scores.add(new float[] {8f});
    assertTrue(KeepRules.decide(model, ranges("x", 3.0, "y", 3.0), Map.of("/op", List.of(
        new KeepRules.Internal("/op/Mul_output_0", "Mul", "/op/MatMul_output_0", scores),
        new KeepRules.Internal("/op/Softmax_output_0", "Softmax", "/op/Mul_output_0", probabilities)))).isEmpty());
  }

  @Test
  void nonFiniteInFloat32IsKeptAndNamed() {
    MixedPrecision.Range output = new MixedPrecision.Range();
    output.add(new float[] {Float.POSITIVE_INFINITY, 1f});
    Map<String, PrecisionReport.KeptNode> kept = decide(single(Onnx.RELU), Map.of("x", ranges("x", 1.0).get("x"),
        "y", output));
    assertTrue(kept.get("/op").reason().contains("already non-finite in float32 (1 values)"), kept.toString());
    assertNull(KeepRules.nonFinite(single(Onnx.RELU).graph().findNode("/op"), ranges("y", 1.0)));
  }

  @Test
  void theFixedThresholdKeepsEveryNodeAbove512ButNotConstants() {
    // 600 is far from float16's limit: the measured rules keep nothing, AutoCast's 512 keeps the node...
    Model model = produced(Onnx.RELU);
    Map<String, MixedPrecision.Range> ranges = ranges("x", 0.6, "argument", 600.0, "y", 600.0);
    assertTrue(decide(model, ranges).isEmpty());
    Map<String, PrecisionReport.KeptNode> threshold = AutoCastRule.keep(model, ranges, AutoCastRule.DATA_MAX);
    assertEquals(List.of("/scale", "/op"), List.copyOf(threshold.keySet()));
    assertTrue(threshold.get("/scale").reason().startsWith("fixed threshold: output 'argument' reaches 600.0 > 512"),
        threshold.toString());
    assertTrue(AutoCastRule.keep(model, ranges("x", 0.1, "argument", 500.0, "y", 500.0), AutoCastRule.DATA_MAX)
        .isEmpty(), "500 stays under the threshold");
    // ...and a weight over 65504 (init_max) keeps its reader; a Constant is never kept.
    model.graph().findValue("w").setInitializer(Tensor.ofFloats(new long[] {1}, 7e4f));
    assertTrue(AutoCastRule.keep(model, ranges("x", 0.1, "argument", 100.0, "y", 100.0), AutoCastRule.DATA_MAX)
        .containsKey("/scale"));
    Graph graph = new Graph("g");
    Node constant = Node.create(Onnx.CONSTANT, "/constant", List.of(), "c");
    constant.setAttribute(Attribute.ofTensor("value", Tensor.ofFloats(new long[] {1}, 1000f)));
    graph.append(constant);
    constant.output().setType(DataType.FLOAT, Shape.of(1));
    graph.addOutput(constant.output());
    assertTrue(AutoCastRule.keep(model(graph), ranges("c", 1000.0), AutoCastRule.DATA_MAX).isEmpty());
  }

  @Test
  void aLoweringNodeBelongsToTheFusedNodeItIsNamedUnder() {
    Set<String> fused = Set.of("/a/attn/MultiHeadAttention", "/a/norm");
    assertEquals("/a/attn/MultiHeadAttention", MixedPrecision.owner("/a/attn/MultiHeadAttention/Softmax", fused));
    assertEquals("/a/attn/MultiHeadAttention", MixedPrecision.owner("/a/attn/MultiHeadAttention/MatMul_2", fused));
    assertNull(MixedPrecision.owner("/a/norm", fused), "a node of the graph itself");
    assertNull(MixedPrecision.owner("/b/conv/Conv", fused));
  }
}
