package dev.kiln.optimizer.folding;

import dev.kiln.graph.Node;
import java.util.List;

/** Expand: the input broadcast to (the broadcast of) the given shape. */
final class Expand implements OpEvaluator {
  @Override
  public List<HostTensor> evaluate(Node node, List<HostTensor> inputs, Limit limit) {
    HostTensor data = inputs.get(0);
    long[] outDims = Indexing.broadcast(data.dims(), inputs.get(1).longs());
    int count = limit.check(outDims);
    return List.of(data.gathered(outDims, Indexing.broadcastIndex(data.dims(), outDims, count)));
  }
}
