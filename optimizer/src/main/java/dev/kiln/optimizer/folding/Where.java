package dev.kiln.optimizer.folding;

import dev.kiln.graph.Node;
import java.util.List;

/** Where(condition, x, y): x where the condition holds, else y, all three broadcast together. */
final class Where implements OpEvaluator {
  @Override
  public List<HostTensor> evaluate(Node node, List<HostTensor> inputs, Limit limit) {
    HostTensor condition = inputs.get(0);
    HostTensor x = inputs.get(1);
    HostTensor y = inputs.get(2);
    if (x.type() != y.type()) {
      throw new EvaluationException("Where branches differ in type: " + x + " and " + y);
    }
    long[] outDims = Indexing.broadcast(condition.dims(), x.dims(), y.dims());
    int count = limit.check(outDims);
    int[] fromCondition = Indexing.broadcastIndex(condition.dims(), outDims, count);
    int[] fromX = Indexing.broadcastIndex(x.dims(), outDims, count);
    int[] fromY = Indexing.broadcastIndex(y.dims(), outDims, count);
    if (x.isReal()) {
      double[] out = new double[count];
      for (int i = 0; i < count; i++) {
        out[i] = condition.integer(fromCondition[i]) != 0 ? x.reals()[fromX[i]] : y.reals()[fromY[i]];
      }
      return List.of(HostTensor.ofDoubles(x.type(), outDims, out));
    }
    long[] out = new long[count];
    for (int i = 0; i < count; i++) {
      out[i] = condition.integer(fromCondition[i]) != 0 ? x.integers()[fromX[i]] : y.integers()[fromY[i]];
    }
    return List.of(HostTensor.ofLongs(x.type(), outDims, out));
  }
}
