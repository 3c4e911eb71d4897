package dev.kiln.optimizer.folding;

import dev.kiln.graph.Node;
import java.util.List;

/** Range(start, limit, delta): max(ceil((limit - start) / delta), 0) elements of start's type. */
final class Range implements OpEvaluator {
  @Override
  public List<HostTensor> evaluate(Node node, List<HostTensor> inputs, Limit limit) {
    HostTensor start = inputs.get(0);
    double first = start.real(0);
    double end = inputs.get(1).real(0);
    double delta = inputs.get(2).real(0);
    if (delta == 0) {
      throw new EvaluationException("Range with delta 0");
    }
    long count = Math.max((long) Math.ceil((end - first) / delta), 0);
    int size = limit.check(new long[] {count});
    if (start.isReal()) {
      double[] out = new double[size];
      for (int i = 0; i < size; i++) {
        out[i] = HostTensor.roundReal(start.type(), first + i * delta);
      }
      return List.of(HostTensor.ofDoubles(start.type(), new long[] {size}, out));
    }
    long from = start.integer(0);
    long step = inputs.get(2).integer(0);
    long[] out = new long[size];
    for (int i = 0; i < size; i++) {
      out[i] = HostTensor.wrapInteger(start.type(), from + i * step);
    }
    return List.of(HostTensor.ofLongs(start.type(), new long[] {size}, out));
  }
}
