package dev.kiln.optimizer.folding;

import dev.kiln.graph.Node;
import java.util.List;
import java.util.function.DoubleUnaryOperator;
import java.util.function.LongUnaryOperator;

/** An elementwise op of one input that keeps its type; {@code integer} null when the op is for reals only. */
final class Unary implements OpEvaluator {
  private final DoubleUnaryOperator real;
  private final LongUnaryOperator integer;

  Unary(DoubleUnaryOperator real, LongUnaryOperator integer) {
    this.real = real;
    this.integer = integer;
  }

  @Override
  public List<HostTensor> evaluate(Node node, List<HostTensor> inputs, Limit limit) {
    HostTensor input = inputs.get(0);
    int count = input.count();
    if (input.isReal()) {
      if (real == null) {
        throw new EvaluationException(node.opType().name() + " of " + input.type());
      }
      double[] out = new double[count];
      for (int i = 0; i < count; i++) {
        out[i] = HostTensor.roundReal(input.type(), real.applyAsDouble(input.reals()[i]));
      }
      return List.of(HostTensor.ofDoubles(input.type(), input.dims(), out));
    }
    if (integer == null) {
      throw new EvaluationException(node.opType().name() + " of " + input.type());
    }
    long[] out = new long[count];
    for (int i = 0; i < count; i++) {
      out[i] = HostTensor.wrapInteger(input.type(), integer.applyAsLong(input.integers()[i]));
    }
    return List.of(HostTensor.ofLongs(input.type(), input.dims(), out));
  }
}
