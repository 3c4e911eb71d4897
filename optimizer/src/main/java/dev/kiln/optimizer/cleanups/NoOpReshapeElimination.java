package dev.kiln.optimizer.cleanups;

import dev.kiln.graph.Onnx;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Value;
import dev.kiln.graph.infer.DimArithmetic;
import dev.kiln.optimizer.engine.Builder;
import dev.kiln.optimizer.engine.Check;
import dev.kiln.optimizer.engine.Match;
import dev.kiln.optimizer.engine.NodeKey;
import dev.kiln.optimizer.engine.Pattern;
import dev.kiln.optimizer.engine.PatternBuilder;
import dev.kiln.optimizer.engine.Rule;
import dev.kiln.optimizer.engine.ValueKey;

/**
 * {@code Reshape(x, s)} whose output provably has x's shape  ⇒  {@code x} (single-head folds, views that only
 * restate a shape); {@code Reshape(Reshape(x, a), b)}  ⇒  {@code Reshape(x, b)} when b has no 0 entries.
 */
public final class NoOpReshapeElimination implements Rule {
  @Override
  public String name() {
    return "remove-noop-reshape";
  }

  @Override
  public Pattern pattern(PatternBuilder p) {
    return p.op(Onnx.RESHAPE, p.input(Values.X), p.any(Values.TARGET)).as(Nodes.RESHAPE);
  }

  @Override
  public Check check(Match m) {
    Shape in = m.shape(Values.X);
    Shape out = m.shape(m.node(Nodes.RESHAPE).output());
    if (in == null || out == null) {
      return Check.fail("shape unknown");
    }
    if (in.rank() != out.rank()) {
      return Check.fail("changes rank");
    }
    for (int i = 0; i < in.rank(); i++) {
      if (!DimArithmetic.certainlyEqual(in.dim(i), out.dim(i))) {
        return Check.fail("changes the shape (or cannot be shown not to)");
      }
    }
    return Check.ok();
  }

  @Override
  public Value rewrite(Match m, Builder b) {
    return m.value(Values.X);
  }

  /** What the pattern binds values to. */
  private enum Values implements ValueKey { X, TARGET }
  private enum Nodes implements NodeKey { RESHAPE }
}
