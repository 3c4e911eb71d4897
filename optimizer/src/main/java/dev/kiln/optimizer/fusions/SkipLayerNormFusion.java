package dev.kiln.optimizer.fusions;

import dev.kiln.graph.Attribute;
import dev.kiln.graph.Microsoft;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import dev.kiln.graph.infer.DimArithmetic;
import dev.kiln.optimizer.engine.Builder;
import dev.kiln.optimizer.engine.Check;
import dev.kiln.optimizer.engine.Constants;
import dev.kiln.optimizer.engine.Match;
import dev.kiln.optimizer.engine.Pattern;
import dev.kiln.optimizer.engine.PatternBuilder;
import dev.kiln.optimizer.engine.Rule;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * {@code LayerNormalization(Add(a, b), γ, β)}  ⇒  {@code SkipLayerNormalization(a, b, γ, β)}; when {@code a} is
 * itself {@code Add(y, bias[C])} with a constant bias (a linear layer's), the bias moves into the fused op's
 * fifth input. The residual sum comes out as output 3 when something else still reads it.
 */
public final class SkipLayerNormFusion implements Rule {
  @Override
  public String name() {
    return "skip-layer-norm";
  }

  @Override
  public Pattern pattern(PatternBuilder p) {
    var sum = p.op(Onnx.ADD, p.input("a"), p.input("b")).mayEscape().as("sum");
    return p.op(Onnx.LAYER_NORMALIZATION, sum, p.constant("gamma"), p.constant("beta")).as("norm");
  }

  @Override
  public Check check(Match m) {
    Node norm = m.node("norm");
    Shape a = m.shape("a");
    Shape b = m.shape("b");
    if (a == null || b == null) {
      return Check.fail("input or skip shape unknown");
    }
    long axis = norm.intAttribute("axis", -1);
    if (axis != -1 && axis != a.rank() - 1) {
      return Check.fail("normalizes over axis " + axis + ", not the last");
    }
    if (a.rank() != 3 || b.rank() != 3) {
      return Check.fail("input and skip are not both 3-D: " + a + " and " + b);
    }
    for (int i = 0; i < 3; i++) {
      if (!DimArithmetic.certainlyEqual(a.dim(i), b.dim(i))) {
        return Check.fail("input and skip shapes are not provably equal (broadcasting add): " + a + " vs " + b);
      }
    }
    if (m.constant("gamma").dims().length != 1 || m.constant("beta").dims().length != 1) {
      return Check.fail("gamma or beta is not a vector");
    }
    return Check.ok();
  }

  @Override
  public Value rewrite(Match m, Builder b) {
    Value input = m.value("a");
    Value skip = m.value("b");
    Value bias = null;
    // A linear layer's bias Add on either operand folds into the fused op when that Add has no other user.
    for (int side = 0; side < 2 && bias == null; side++) {
      Value candidate = side == 0 ? input : skip;
      Node producer = candidate.producer();
      if (producer != null && producer.is(Onnx.ADD) && candidate.uses().size() == 1 && !candidate.isGraphOutput()) {
        for (int operand = 0; operand < 2; operand++) {
          Tensor constant = Constants.tensor(producer.input(operand));
          if (constant != null && constant.dims().length == 1 && constant.dims()[0] == m.constant("gamma").dims()[0]
              && Constants.tensor(producer.input(1 - operand)) == null) {
            bias = producer.input(operand);
            Value other = side == 0 ? skip : input;
            input = producer.input(1 - operand);
            skip = other;
            break;
          }
        }
      }
    }
    List<Value> inputs = new ArrayList<>(Arrays.asList(input, skip, m.value("gamma"), m.value("beta")));
    if (bias != null) {
      inputs.add(bias);
    }
    Attribute epsilon = Attribute.ofFloat("epsilon", m.node("norm").floatAttribute("epsilon", 1e-5f));
    Value sum = m.node("sum").output();
    boolean sumNeeded = sum.consumerCount() > 1;
    if (!sumNeeded) {
      return b.op(Microsoft.SKIP_LAYER_NORMALIZATION, inputs, epsilon);
    }
    List<Value> outputs = b.ops(Microsoft.SKIP_LAYER_NORMALIZATION, new boolean[] {true, false, false, true}, inputs, epsilon);
    b.replace(sum, outputs.get(3));
    return outputs.get(0);
  }
}
