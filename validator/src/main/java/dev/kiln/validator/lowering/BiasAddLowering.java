package dev.kiln.validator.lowering;

import dev.kiln.graph.Microsoft;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.OpType;
import dev.kiln.graph.Value;
import java.util.Arrays;
import java.util.List;

/**
 * com.microsoft.BiasAdd(X[N, S, C], bias[C], skip[N, S, C]) ⇒ Add(Add(X, bias), skip).
 *
 * <p>Spec: add the bias to the input, then add the residual. The bias broadcasts on the last axis.
 */
final class BiasAddLowering implements OpLowering {
  @Override
  public OpType op() {
    return Microsoft.BIAS_ADD;
  }

  @Override
  public List<Value> lower(Node node, Emitter emitter) {
    if (node.input(1) == null || node.input(2) == null) {
      throw emitter.failure("BiasAdd takes three inputs (X, bias, skip)");
    }
    Value biased = emitter.op(Onnx.ADD, node.input(0), node.input(1));
    return Arrays.asList(emitter.op(Onnx.ADD, biased, node.input(2)));
  }
}
