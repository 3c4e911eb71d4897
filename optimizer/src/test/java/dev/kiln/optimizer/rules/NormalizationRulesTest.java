package dev.kiln.optimizer.rules;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.graph.Attribute;
import dev.kiln.graph.Microsoft;
import dev.kiln.graph.Model;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Value;
import dev.kiln.optimizer.engine.DriverReport;
import dev.kiln.optimizer.fusions.LayerNormFusion;
import dev.kiln.optimizer.fusions.SkipLayerNormFusion;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class NormalizationRulesTest {
  private static final Shape HIDDEN = Shape.of(Shape.symbolic("batch"), Shape.symbolic("sequence"), Shape.known(8));

  /** torch's opset-14 LayerNorm over {@code axis}. */
  private static Value layerNorm(SmallGraph g, Value x, long axis) {
    Value mean = g.op(Onnx.REDUCE_MEAN, List.of(x), Attribute.ofInts("axes", axis));
    Value centered = g.op(Onnx.SUB, x, mean);
    Value variance = g.op(Onnx.REDUCE_MEAN, List.of(g.op(Onnx.POW, centered, g.scalar(2f))), Attribute.ofInts("axes", axis));
    Value deviation = g.op(Onnx.SQRT, g.op(Onnx.ADD, variance, g.scalar(1e-5f)));
    Value normalized = g.op(Onnx.DIV, centered, deviation);
    return g.op(Onnx.ADD, g.op(Onnx.MUL, normalized, g.weights("weight", 8)), g.weights("bias", 8));
  }

  @Test
  void layerNormFromItsOpset14Decomposition() {
    SmallGraph g = new SmallGraph(14, "/norm1/");
    g.output(layerNorm(g, g.input("x", HIDDEN), -1), "y", HIDDEN);
    Model before = RuleTestSupport.copy(g.model);
    String printed = RuleTestSupport.print(g.model);
    DriverReport report = RuleTestSupport.apply(g.model, new LayerNormFusion());
    assertEquals(1, report.applied("layer-norm"));
    assertEquals(1, g.graph.nodes().size());
    assertTrue(g.graph.nodes().get(0).is(Onnx.LAYER_NORMALIZATION));
    RuleTestSupport.assertGolden("layer-norm", printed, RuleTestSupport.print(g.model));
    assertTrue(RuleTestSupport.parity(before, g.model, Map.of("batch", 2L, "sequence", 5L)) <= 1e-5);
  }

  @Test
  void layerNormOverAnotherAxisIsDeclinedWithItsReason() {
    SmallGraph g = new SmallGraph(14, "/norm1/");
    g.output(layerNorm(g, g.input("x", HIDDEN), 1), "y", HIDDEN);
    DriverReport report = RuleTestSupport.apply(g.model, new LayerNormFusion());
    assertEquals(0, report.applied("layer-norm"));
    assertEquals(Map.of("mean is not over the last axis only", 1), report.stats("layer-norm").rejections());
  }

  @Test
  void layerNormInAnOpset13ModelIsDeclinedWithItsReason() {
    // LayerNormalization is standard from opset 17; an opset-13 model cannot be raised to it safely
    SmallGraph g = new SmallGraph(13, "/norm1/");
    g.output(layerNorm(g, g.input("x", HIDDEN), -1), "y", HIDDEN);
    DriverReport report = RuleTestSupport.apply(g.model, new LayerNormFusion());
    assertEquals(0, report.applied("layer-norm"));
    assertEquals(Map.of("LayerNormalization needs opset 17 and opset 13 cannot be raised to it safely (Softmax,"
        + " Squeeze, Unsqueeze, ReduceSum and others changed meaning at 13 and 14)", 1),
        report.stats("layer-norm").rejections());
  }

  @Test
  void layerNormInAnOpset14ModelWithRoiAlignIsDeclined() {
    SmallGraph g = new SmallGraph(14, "/norm1/");
    Value x = g.input("x", HIDDEN);
    g.output(layerNorm(g, x, -1), "y", HIDDEN);
    Value boxes = g.filled("boxes", 0f, 1, 4);
    Value indices = g.graph.addInitializer("indices", dev.kiln.graph.Tensor.ofLongs(new long[] {1}, 0));
    Value image = g.input("image", Shape.of(1, 1, 4, 4));
    g.output(g.op(Onnx.ROI_ALIGN, image, boxes, indices), "roi", Shape.of(1, 1, 1, 1));
    DriverReport report = RuleTestSupport.apply(g.model, new LayerNormFusion());
    assertEquals(0, report.applied("layer-norm"));
    assertEquals(Map.of("LayerNormalization needs opset 17 and this opset-14 model has RoiAlign, whose default"
        + " changed at 16", 1), report.stats("layer-norm").rejections());
  }

  /** residual = attention_output(+bias) + hidden; LayerNorm(residual); the residual is read again later. */
  private static SmallGraph residualBlock(Shape skipShape) {
    SmallGraph g = new SmallGraph(17, "/transformer_blocks.0/");
    Value hidden = g.input("hidden", HIDDEN);
    Value skip = g.input("skip", skipShape);
    Value projected = g.op(Onnx.ADD, g.weights("to_out.bias", 8), g.op(Onnx.MAT_MUL, hidden, g.weights("to_out.weight", 8, 8)));
    Value residual = g.op(Onnx.ADD, projected, skip);
    Value normalized = g.op(Onnx.LAYER_NORMALIZATION, List.of(residual, g.weights("norm2.weight", 8), g.weights("norm2.bias", 8)),
        Attribute.ofInt("axis", -1), Attribute.ofFloat("epsilon", 1e-5f));
    g.output(g.op(Onnx.ADD, normalized, residual), "y", HIDDEN);
    return g;
  }

  @Test
  void skipLayerNormTakesTheBiasAndKeepsTheSumForItsOtherUser() {
    SmallGraph g = residualBlock(HIDDEN);
    Model before = RuleTestSupport.copy(g.model);
    String printed = RuleTestSupport.print(g.model);
    DriverReport report = RuleTestSupport.apply(g.model, new SkipLayerNormFusion());
    assertEquals(1, report.applied("skip-layer-norm"));
    var fused = g.graph.nodes().stream().filter(node -> node.is(Microsoft.SKIP_LAYER_NORMALIZATION)).findFirst().orElseThrow();
    assertEquals(5, fused.inputCount(), "bias moved into the fused op");
    assertTrue(fused.output(3).hasUses(), "the residual sum comes out of output 3");
    assertEquals(List.of("MatMul", "SkipLayerNormalization", "Add"),
        g.graph.nodes().stream().map(node -> node.opType().name()).toList());
    RuleTestSupport.assertGolden("skip-layer-norm", printed, RuleTestSupport.print(g.model));
    assertTrue(RuleTestSupport.parity(before, g.model, Map.of("batch", 2L, "sequence", 5L)) <= 1e-5);
  }

  @Test
  void skipLayerNormDeclinesABroadcastingSkip() {
    SmallGraph g = residualBlock(Shape.of(Shape.known(1), Shape.symbolic("sequence"), Shape.known(8)));
    DriverReport report = RuleTestSupport.apply(g.model, new SkipLayerNormFusion());
    assertEquals(0, report.applied("skip-layer-norm"));
    assertEquals(Map.of("input and skip shapes are not provably equal (broadcasting add): ['batch','sequence',8] vs [1,'sequence',8]", 1),
        report.stats("skip-layer-norm").rejections());
  }

  @Test
  void skipLayerNormSaysSoWhenAShapeIsUnknown() {
    SmallGraph g = residualBlock(HIDDEN);
    g.graph.inputs().get(1).setType(dev.kiln.graph.DataType.FLOAT, null);
    DriverReport report = RuleTestSupport.apply(g.model, new SkipLayerNormFusion());
    assertEquals(Map.of("input or skip shape unknown", 1), report.stats("skip-layer-norm").rejections());
  }
}
