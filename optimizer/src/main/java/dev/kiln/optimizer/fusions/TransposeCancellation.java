package dev.kiln.optimizer.fusions;

import dev.kiln.graph.Attribute;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Value;
import dev.kiln.optimizer.engine.Builder;
import dev.kiln.optimizer.engine.Check;
import dev.kiln.optimizer.engine.Match;
import dev.kiln.optimizer.engine.NodeKey;
import dev.kiln.optimizer.engine.Pattern;
import dev.kiln.optimizer.engine.PatternBuilder;
import dev.kiln.optimizer.engine.Rule;
import dev.kiln.optimizer.engine.ValueKey;
import java.util.Arrays;

/**
 * {@code Transpose(p₂, Transpose(p₁, x))} with p₂ the inverse of p₁  ⇒  {@code x}. The channels-last rules put
 * NCHW→NHWC and NHWC→NCHW Transposes around every fused op; between two neighbours they meet and vanish. The
 * inner Transpose stays when something else reads it.
 */
public final class TransposeCancellation implements Rule {
  @Override
  public String name() {
    return "transpose-cancel";
  }

  @Override
  public Pattern pattern(PatternBuilder p) {
    var inner = p.op(Onnx.TRANSPOSE, p.input(Values.X)).mayEscape().as(Nodes.INNER);
    return p.op(Onnx.TRANSPOSE, inner).as(Nodes.OUTER);
  }

  @Override
  public Check check(Match m) {
    long[] first = permutation(m, m.node(Nodes.INNER), m.value(Values.X));
    Value middle = m.node(Nodes.INNER).output();
    long[] second = permutation(m, m.node(Nodes.OUTER), middle);
    if (first == null || second == null) {
      return Check.fail("a Transpose without perm on a tensor of unknown rank");
    }
    if (first.length != second.length) {
      return Check.fail("permutations of different ranks");
    }
    // Output axis i of the pair reads input axis first[second[i]]; the pair is the identity when that is i.
    for (int axis = 0; axis < second.length; axis++) {
      if (first[(int) second[axis]] != axis) {
        return Check.fail("permutations " + Arrays.toString(first) + " then " + Arrays.toString(second)
            + " do not cancel");
      }
    }
    Value x = m.value(Values.X);
    if (m.node(Nodes.OUTER).output().isGraphOutput() && (x.isGraphInput() || x.isInitializer())) {
      return Check.fail("the graph output would become a graph input");
    }
    return Check.ok();
  }

  /** The perm attribute, or the default (reversed axes) when the rank is known. */
  private static long[] permutation(Match m, Node transpose, Value input) {
    Attribute perm = transpose.attribute("perm");
    if (perm != null) {
      return perm.asLongs();
    }
    Shape shape = m.shape(input);
    if (shape == null) {
      return null;
    }
    long[] reversed = new long[shape.rank()];
    for (int axis = 0; axis < reversed.length; axis++) {
      reversed[axis] = reversed.length - 1 - axis;
    }
    return reversed;
  }

  @Override
  public Value rewrite(Match m, Builder b) {
    return m.value(Values.X);
  }

  /** What the pattern binds values to. */
  private enum Values implements ValueKey { X }
  private enum Nodes implements NodeKey { INNER, OUTER }
}
