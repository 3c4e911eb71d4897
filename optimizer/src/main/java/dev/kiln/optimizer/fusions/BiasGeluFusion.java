package dev.kiln.optimizer.fusions;

import dev.kiln.graph.Microsoft;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import dev.kiln.optimizer.engine.Builder;
import dev.kiln.optimizer.engine.Check;
import dev.kiln.optimizer.engine.Match;
import dev.kiln.optimizer.engine.Pattern;
import dev.kiln.optimizer.engine.PatternBuilder;
import dev.kiln.optimizer.engine.Rule;
import dev.kiln.optimizer.engine.ValueKey;
import java.util.List;

/** {@code Gelu(Add(x, bias[C]))} (after {@link GeluFusion})  ⇒  {@code BiasGelu(x, bias)}, bias along the last axis. */
public final class BiasGeluFusion implements Rule {
  @Override
  public String name() {
    return "bias-gelu";
  }

  @Override
  public Pattern pattern(PatternBuilder p) {
    return p.op(Microsoft.GELU, p.op(Onnx.ADD, p.input(Values.X), p.constant(Values.BIAS)));
  }

  @Override
  public Check check(Match m) {
    Tensor bias = m.constant(Values.BIAS);
    Shape shape = m.shape(Values.X);
    if (bias.dims().length != 1) {
      return Check.fail("bias is not a vector: " + bias.shape());
    }
    if (shape == null || shape.rank() == 0) {
      return Check.fail("input shape unknown");
    }
    Shape.Dim last = shape.dim(shape.rank() - 1);
    return Check.require(last.equals(Shape.known(bias.dims()[0])),
        "bias length " + bias.dims()[0] + " does not match the last dim " + last);
  }

  @Override
  public Value rewrite(Match m, Builder b) {
    return b.op(Microsoft.BIAS_GELU, List.of(m.value(Values.X), m.value(Values.BIAS)));
  }

  /** What the pattern binds values to. */
  private enum Values implements ValueKey { X, BIAS }
}
