package dev.kiln.optimizer.fusions;

import dev.kiln.graph.Microsoft;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Value;
import dev.kiln.optimizer.engine.Builder;
import dev.kiln.optimizer.engine.Match;
import dev.kiln.optimizer.engine.Pattern;
import dev.kiln.optimizer.engine.PatternBuilder;
import dev.kiln.optimizer.engine.Rule;
import dev.kiln.optimizer.engine.ValueKey;
import java.util.List;

/**
 * Exact GELU as torch exports it: {@code Div(x, √2) → Erf → Add(1) → Mul(x) → Mul(0.5)} (or {@code Mul(x, 1/√2)},
 * or the 0.5 applied to x first)  ⇒  {@code com.microsoft.Gelu(x)}; optionally {@code FastGelu} (tanh
 * approximation, ~1e-3 off, so never on by default).
 */
public final class GeluFusion implements Rule {
  private final boolean fast;

  private GeluFusion(boolean fast) {
    this.fast = fast;
  }

  /** The exact (erf) form: what every profile runs. */
  public static GeluFusion exact() {
    return new GeluFusion(false);
  }

  /** {@code FastGelu}, the tanh approximation (~1e-3 off); rule name "fast-gelu". */
  public static GeluFusion tanhApproximation() {
    return new GeluFusion(true);
  }

  @Override
  public String name() {
    return fast ? "fast-gelu" : "gelu";
  }

  @Override
  public Pattern pattern(PatternBuilder p) {
    var x = p.input(Values.X);
    var scaled = p.anyOf(p.op(Onnx.DIV, x, p.scalar(Math.sqrt(2.0))), p.op(Onnx.MUL, x, p.scalar(Math.sqrt(0.5))));
    var onePlusErf = p.op(Onnx.ADD, p.op(Onnx.ERF, scaled), p.scalar(1.0));
    var halfAfter = p.op(Onnx.MUL, p.op(Onnx.MUL, x, onePlusErf), p.scalar(0.5));
    var halfBefore = p.op(Onnx.MUL, p.op(Onnx.MUL, x, p.scalar(0.5)), onePlusErf);
    return p.anyOf(halfAfter, halfBefore);
  }

  @Override
  public Value rewrite(Match m, Builder b) {
    return b.op(fast ? Microsoft.FAST_GELU : Microsoft.GELU, List.of(m.value(Values.X)));
  }

  /** What the pattern binds values to. */
  private enum Values implements ValueKey { X }
}
