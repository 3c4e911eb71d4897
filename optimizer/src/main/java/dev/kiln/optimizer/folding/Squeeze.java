package dev.kiln.optimizer.folding;

import dev.kiln.graph.Node;
import java.util.List;

/** Squeeze: the given size-1 axes removed, or every size-1 axis when none are given. */
final class Squeeze implements OpEvaluator {
  @Override
  public List<HostTensor> evaluate(Node node, List<HostTensor> inputs, Limit limit) {
    HostTensor data = inputs.get(0);
    long[] axes = AxesInput.of(node, inputs);
    long[] dims = data.dims();
    boolean[] removed = new boolean[dims.length];
    if (axes == null) {
      for (int i = 0; i < dims.length; i++) {
        removed[i] = dims[i] == 1;
      }
    } else {
      for (long axis : axes) {
        int position = Indexing.axis(axis, dims.length);
        if (dims[position] != 1) {
          throw new EvaluationException("Squeeze axis " + axis + " has size " + dims[position] + ", not 1");
        }
        removed[position] = true;
      }
    }
    long[] out = java.util.stream.IntStream.range(0, dims.length).filter(i -> !removed[i]).mapToLong(i -> dims[i]).toArray();
    return List.of(data.withDims(out));
  }
}
