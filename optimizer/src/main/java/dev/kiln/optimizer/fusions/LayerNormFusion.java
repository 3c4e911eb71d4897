package dev.kiln.optimizer.fusions;

import dev.kiln.graph.Attribute;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import dev.kiln.graph.infer.ShapeInference;
import dev.kiln.optimizer.engine.Builder;
import dev.kiln.optimizer.engine.Check;
import dev.kiln.optimizer.engine.Match;
import dev.kiln.optimizer.engine.Pattern;
import dev.kiln.optimizer.engine.PatternBuilder;
import dev.kiln.optimizer.engine.Rule;
import dev.kiln.optimizer.passes.LayerNormOpset;
import java.util.List;

/**
 * LayerNorm from torch's opset-14 decomposition:
 * {@code ReduceMean → Sub → Pow(2) → ReduceMean → Add(ε) → Sqrt → Div → Mul(γ) → Add(β)}  ⇒
 * {@code LayerNormalization(x, γ, β, axis=-1, epsilon=ε)}. The op is standard from opset 17: into an opset 14–16
 * model it goes only when {@link LayerNormOpset} can raise the model to 17 afterwards (it is in every profile that
 * has this rule).
 */
public final class LayerNormFusion implements Rule {
  @Override
  public String name() {
    return "layer-norm";
  }

  @Override
  public Pattern pattern(PatternBuilder p) {
    var x = p.input("x");
    var mean = p.op(Onnx.REDUCE_MEAN, x).withTrailingInputs().as("mean");
    var centered = p.op(Onnx.SUB, x, mean).as("centered");
    var variance = p.op(Onnx.REDUCE_MEAN, p.op(Onnx.POW, centered, p.scalar(2.0))).withTrailingInputs().as("variance");
    var deviation = p.op(Onnx.SQRT, p.op(Onnx.ADD, variance, p.constant("epsilon")));
    var normalized = p.op(Onnx.DIV, centered, deviation);
    return p.op(Onnx.ADD, p.op(Onnx.MUL, normalized, p.constant("gamma")), p.constant("beta"));
  }

  @Override
  public Check check(Match m) {
    String opset = LayerNormOpset.blocker(m.model());
    if (opset != null) {
      return Check.fail(opset);
    }
    Shape shape = m.shape("x");
    if (shape == null) {
      return Check.fail("input shape unknown");
    }
    for (String reduction : List.of("mean", "variance")) {
      long[] axes = axes(m.node(reduction), m.shapes());
      if (axes == null) {
        return Check.fail(reduction + " axes unknown");
      }
      if (axes.length != 1 || (axes[0] != -1 && axes[0] != shape.rank() - 1)) {
        return Check.fail(reduction + " is not over the last axis only");
      }
      if (m.node(reduction).intAttribute("keepdims", 1) != 1) {
        return Check.fail(reduction + " does not keep dims");
      }
    }
    double epsilon = m.scalar("epsilon");
    if (Double.isNaN(epsilon) || epsilon <= 0 || epsilon > 1e-3) {
      return Check.fail("epsilon is not a small positive scalar");
    }
    Shape.Dim channels = shape.dim(shape.rank() - 1);
    for (String parameter : List.of("gamma", "beta")) {
      Tensor tensor = m.constant(parameter);
      if (tensor.dims().length != 1) {
        return Check.fail(parameter + " is not a vector: " + tensor.shape());
      }
      if (!(channels instanceof Shape.Known known) || known.value() != tensor.dims()[0]) {
        return Check.fail(parameter + " length " + tensor.dims()[0] + " does not match the last dim " + channels);
      }
    }
    return Check.ok();
  }

  /** Reduction axes from the attribute (opset ≤ 17) or the second input (opset 18). */
  static long[] axes(Node reduce, ShapeInference shapes) {
    if (reduce.hasAttribute("axes")) {
      return reduce.attribute("axes").asLongs();
    }
    if (reduce.input(1) != null) {
      return shapes.knownElements(reduce.input(1));
    }
    return null;
  }

  @Override
  public Value rewrite(Match m, Builder b) {
    return b.op(Onnx.LAYER_NORMALIZATION, List.of(m.value("x"), m.value("gamma"), m.value("beta")),
        Attribute.ofInt("axis", -1), Attribute.ofFloat("epsilon", (float) m.scalar("epsilon")));
  }
}
