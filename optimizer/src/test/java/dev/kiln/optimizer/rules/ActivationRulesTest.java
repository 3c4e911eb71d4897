package dev.kiln.optimizer.rules;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.graph.Microsoft;
import dev.kiln.graph.Model;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Value;
import dev.kiln.optimizer.engine.DriverReport;
import dev.kiln.optimizer.fusions.BiasGeluFusion;
import dev.kiln.optimizer.fusions.GeluFusion;
import dev.kiln.optimizer.fusions.QuickGeluFusion;
import java.util.Map;
import org.junit.jupiter.api.Test;

class ActivationRulesTest {
  private static final Shape HIDDEN = Shape.of(Shape.symbolic("batch"), Shape.known(5), Shape.known(8));
  private static final Map<String, Long> DIMS = Map.of("batch", 2L);

  /** fc1 → Add(bias) → exact GELU as torch exports it. */
  private static SmallGraph geluSite(float divisor) {
    SmallGraph g = new SmallGraph(17, "/mlp/");
    Value x = g.input("x", HIDDEN);
    Value biased = g.op(Onnx.ADD, g.weights("fc1.bias", 8), x);
    Value erf = g.op(Onnx.ERF, g.op(Onnx.DIV, biased, g.scalar(divisor)));
    Value gelu = g.op(Onnx.MUL, g.op(Onnx.MUL, biased, g.op(Onnx.ADD, erf, g.scalar(1f))), g.scalar(0.5f));
    g.output(gelu, "y", HIDDEN);
    return g;
  }

  @Test
  void geluThenBiasGelu() {
    SmallGraph g = geluSite(1.4142135f);
    Model before = RuleTestSupport.copy(g.model);
    String printed = RuleTestSupport.print(g.model);
    DriverReport report = RuleTestSupport.apply(g.model, GeluFusion.exact(), new BiasGeluFusion());
    assertEquals(1, report.applied("gelu"));
    assertEquals(1, report.applied("bias-gelu"));
    assertEquals(1, g.graph.nodes().size());
    assertTrue(g.graph.nodes().get(0).is(Microsoft.BIAS_GELU));
    RuleTestSupport.assertGolden("gelu-bias-gelu", printed, RuleTestSupport.print(g.model));
    assertTrue(RuleTestSupport.parity(before, g.model, DIMS) <= 1e-5);
  }

  @Test
  void geluAloneIsGoldenToo() {
    SmallGraph g = geluSite(1.4142135f);
    String printed = RuleTestSupport.print(g.model);
    assertEquals(1, RuleTestSupport.apply(g.model, GeluFusion.exact()).applied("gelu"));
    RuleTestSupport.assertGolden("gelu", printed, RuleTestSupport.print(g.model));
  }

  @Test
  void fastGeluIsAnApproximationWithinItsKnownError() {
    SmallGraph g = geluSite(1.4142135f);
    Model before = RuleTestSupport.copy(g.model);
    assertEquals(1, RuleTestSupport.apply(g.model, GeluFusion.tanhApproximation()).applied("fast-gelu"));
    assertTrue(g.graph.nodes().stream().anyMatch(node -> node.is(Microsoft.FAST_GELU)));
    double error = RuleTestSupport.parity(before, g.model, DIMS);
    assertTrue(error > 1e-7 && error < 1e-2, "tanh approximation error " + error);
  }

  @Test
  void aDivisorOtherThanRootTwoIsNotGelu() {
    SmallGraph g = geluSite(1.5f);
    DriverReport report = RuleTestSupport.apply(g.model, GeluFusion.exact());
    assertEquals(0, report.applied("gelu"));
    assertEquals(Map.of(), report.stats("gelu").rejections(), "not a site at all, so nothing to decline");
  }

  @Test
  void biasGeluDeclinesABiasThatIsNotAVector() {
    SmallGraph g = new SmallGraph(17, "/mlp/");
    Value x = g.input("x", HIDDEN);
    Value biased = g.op(Onnx.ADD, x, g.weights("fc1.bias", 1, 8));
    g.output(g.op(Microsoft.GELU, biased), "y", HIDDEN);
    DriverReport report = RuleTestSupport.apply(g.model, new BiasGeluFusion());
    assertEquals(Map.of("bias is not a vector: [1,8]", 1), report.stats("bias-gelu").rejections());
  }

  private static SmallGraph quickGeluSite(float alpha) {
    SmallGraph g = new SmallGraph(17, "/encoder/layers.0/mlp/");
    Value x = g.input("x", HIDDEN);
    g.output(g.op(Onnx.MUL, x, g.op(Onnx.SIGMOID, g.op(Onnx.MUL, x, g.scalar(alpha)))), "y", HIDDEN);
    return g;
  }

  @Test
  void quickGelu() {
    SmallGraph g = quickGeluSite(1.702f);
    Model before = RuleTestSupport.copy(g.model);
    String printed = RuleTestSupport.print(g.model);
    assertEquals(1, RuleTestSupport.apply(g.model, new QuickGeluFusion()).applied("quick-gelu"));
    RuleTestSupport.assertGolden("quick-gelu", printed, RuleTestSupport.print(g.model));
    assertTrue(RuleTestSupport.parity(before, g.model, DIMS) <= 1e-5);
  }

  @Test
  void quickGeluDeclinesANegativeAlpha() {
    SmallGraph g = quickGeluSite(-1f);
    DriverReport report = RuleTestSupport.apply(g.model, new QuickGeluFusion());
    assertEquals(Map.of("alpha is not a positive scalar", 1), report.stats("quick-gelu").rejections());
  }
}
