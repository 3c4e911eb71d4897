package dev.kiln.optimizer.folding;

import dev.kiln.graph.DataType;
import dev.kiln.graph.Node;
import java.util.List;

/** Cast to {@code to}: reals rounded to the target's precision, reals to integers truncated toward zero, bool 0/1. */
final class Cast implements OpEvaluator {
  @Override
  public List<HostTensor> evaluate(Node node, List<HostTensor> inputs, Limit limit) {
    DataType to = DataType.fromNumberOrNull((int) node.intAttribute("to", 0));
    if (to == null || !HostTensor.supports(to)) {
      throw new EvaluationException("Cast to " + (to == null ? "an unknown type" : to.toString()) + " is not evaluated");
    }
    return List.of(to(inputs.get(0), to));
  }

  static HostTensor to(HostTensor input, DataType to) {
    int count = input.count();
    if (HostTensor.isReal(to)) {
      double[] out = new double[count];
      for (int i = 0; i < count; i++) {
        out[i] = HostTensor.roundReal(to, input.real(i));
      }
      return HostTensor.ofDoubles(to, input.dims(), out);
    }
    long[] out = new long[count];
    for (int i = 0; i < count; i++) {
      if (to == DataType.BOOL) {
        out[i] = input.real(i) != 0 ? 1 : 0;
      } else {
        out[i] = HostTensor.wrapInteger(to, input.integer(i));
      }
    }
    return HostTensor.ofLongs(to, input.dims(), out);
  }
}
