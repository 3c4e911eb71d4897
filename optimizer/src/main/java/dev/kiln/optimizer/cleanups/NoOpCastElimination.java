package dev.kiln.optimizer.cleanups;

import dev.kiln.graph.DataType;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Value;
import dev.kiln.optimizer.engine.Builder;
import dev.kiln.optimizer.engine.Check;
import dev.kiln.optimizer.engine.Match;
import dev.kiln.optimizer.engine.NodeKey;
import dev.kiln.optimizer.engine.Pattern;
import dev.kiln.optimizer.engine.PatternBuilder;
import dev.kiln.optimizer.engine.Rule;
import dev.kiln.optimizer.engine.ValueKey;

/** {@code Cast(x, to=T)} where x already is T (fp32 exports of {@code .float()} upcasts)  ⇒  {@code x}. */
public final class NoOpCastElimination implements Rule {
  @Override
  public String name() {
    return "remove-noop-cast";
  }

  @Override
  public Pattern pattern(PatternBuilder p) {
    return p.op(Onnx.CAST, p.input(Values.X)).as(Nodes.CAST);
  }

  @Override
  public Check check(Match m) {
    DataType from = m.shapes().dataType(m.value(Values.X));
    DataType to = DataType.fromNumberOrNull((int) m.node(Nodes.CAST).intAttribute("to", 0));
    if (from == null) {
      return Check.fail("input element type unknown");
    }
    return Check.require(from == to, "casts " + from + " to " + to);
  }

  @Override
  public Value rewrite(Match m, Builder b) {
    return m.value(Values.X);
  }

  /** What the pattern binds values to. */
  private enum Values implements ValueKey { X }
  private enum Nodes implements NodeKey { CAST }
}
