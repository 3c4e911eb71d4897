package dev.kiln.optimizer.cleanups;

import dev.kiln.graph.Onnx;
import dev.kiln.graph.Value;
import dev.kiln.optimizer.engine.Builder;
import dev.kiln.optimizer.engine.Match;
import dev.kiln.optimizer.engine.Pattern;
import dev.kiln.optimizer.engine.PatternBuilder;
import dev.kiln.optimizer.engine.Rule;
import dev.kiln.optimizer.engine.ValueKey;

/** {@code Identity(x)}  ⇒  {@code x}. */
public final class IdentityElimination implements Rule {
  @Override
  public String name() {
    return "remove-identity";
  }

  @Override
  public Pattern pattern(PatternBuilder p) {
    return p.op(Onnx.IDENTITY, p.input(Values.X));
  }

  @Override
  public Value rewrite(Match m, Builder b) {
    return m.value(Values.X);
  }

  /** What the pattern binds values to. */
  private enum Values implements ValueKey { X }
}
