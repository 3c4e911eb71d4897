package dev.kiln.optimizer.folding;

import dev.kiln.graph.Node;
import java.util.List;

/** Unsqueeze: size-1 axes inserted at the given positions of the output (any order, negative allowed). */
final class Unsqueeze implements OpEvaluator {
  @Override
  public List<HostTensor> evaluate(Node node, List<HostTensor> inputs, Limit limit) {
    HostTensor data = inputs.get(0);
    long[] axes = AxesInput.of(node, inputs);
    if (axes == null) {
      throw new EvaluationException("Unsqueeze without axes");
    }
    int rank = data.rank() + axes.length;
    boolean[] inserted = new boolean[rank];
    for (long axis : axes) {
      int position = Indexing.axis(axis, rank);
      if (inserted[position]) {
        throw new EvaluationException("Unsqueeze axis " + axis + " is repeated");
      }
      inserted[position] = true;
    }
    long[] dims = new long[rank];
    int from = 0;
    for (int i = 0; i < rank; i++) {
      dims[i] = inserted[i] ? 1 : data.dims()[from++];
    }
    return List.of(data.withDims(dims));
  }
}
