package dev.kiln.optimizer.cleanups;

import dev.kiln.graph.DataType;
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

/**
 * {@code Mul(x, 1)}, {@code Div(x, 1)}  ⇒  {@code x} (e.g. the VAE's {@code / rescale_output_factor} with factor 1),
 * provided the constant cannot broadcast x to a larger shape or change its type.
 */
public final class UnitArithmeticElimination implements Rule {
  @Override
  public String name() {
    return "remove-unit-arithmetic";
  }

  @Override
  public Pattern pattern(PatternBuilder p) {
    return p.anyOf(p.op(Onnx.MUL, p.input(Values.X), p.scalar(Values.ONE, 1.0)),
        p.op(Onnx.DIV, p.input(Values.X), p.scalar(Values.ONE, 1.0)).ordered());
  }

  @Override
  public Check check(Match m) {
    Shape shape = m.shape(Values.X);
    Tensor one = m.constant(Values.ONE);
    if (shape == null) {
      return Check.fail("input shape unknown");
    }
    if (one.dims().length > shape.rank()) {
      return Check.fail("the constant 1 has higher rank than the input and would broadcast it");
    }
    for (int i = 0; i < one.dims().length; i++) {
      long size = one.dims()[one.dims().length - 1 - i];
      Shape.Dim dim = shape.dim(shape.rank() - 1 - i);
      if (size != 1 && !dim.equals(Shape.known(size))) {
        return Check.fail("the constant 1 would broadcast the input along axis " + (shape.rank() - 1 - i));
      }
    }
    DataType type = m.shapes().dataType(m.value(Values.X));
    return Check.require(type != null && type == one.dataType(), "element types differ or are unknown");
  }

  @Override
  public Value rewrite(Match m, Builder b) {
    return m.value(Values.X);
  }

  /** What the pattern binds values to. */
  private enum Values implements ValueKey { X, ONE }
}
