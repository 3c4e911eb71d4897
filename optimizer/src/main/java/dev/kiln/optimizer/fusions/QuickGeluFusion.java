package dev.kiln.optimizer.fusions;

import dev.kiln.graph.Attribute;
import dev.kiln.graph.Microsoft;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Value;
import dev.kiln.optimizer.engine.Builder;
import dev.kiln.optimizer.engine.Check;
import dev.kiln.optimizer.engine.Match;
import dev.kiln.optimizer.engine.Pattern;
import dev.kiln.optimizer.engine.PatternBuilder;
import dev.kiln.optimizer.engine.Rule;
import dev.kiln.optimizer.engine.ValueKey;
import java.util.List;

/** CLIP's quick_gelu: {@code Mul(x, Sigmoid(Mul(x, α)))}  ⇒  {@code QuickGelu(x, alpha=α)} (α = 1.702 in CLIP). */
public final class QuickGeluFusion implements Rule {
  @Override
  public String name() {
    return "quick-gelu";
  }

  @Override
  public Pattern pattern(PatternBuilder p) {
    var x = p.input(Values.X);
    return p.op(Onnx.MUL, x, p.op(Onnx.SIGMOID, p.op(Onnx.MUL, x, p.constant(Values.ALPHA))));
  }

  @Override
  public Check check(Match m) {
    double alpha = m.scalar(Values.ALPHA);
    return Check.require(!Double.isNaN(alpha) && alpha > 0, "alpha is not a positive scalar");
  }

  @Override
  public Value rewrite(Match m, Builder b) {
    return b.op(Microsoft.QUICK_GELU, List.of(m.value(Values.X)),
        Attribute.ofFloat("alpha", (float) m.scalar(Values.ALPHA)));
  }

  /** What the pattern binds values to. */
  private enum Values implements ValueKey { X, ALPHA }
}
