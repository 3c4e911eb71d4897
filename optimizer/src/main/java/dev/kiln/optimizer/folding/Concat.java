package dev.kiln.optimizer.folding;

import dev.kiln.graph.Node;
import java.util.List;

/** Concat along {@code axis}; every input has the first one's type and all other dims. */
final class Concat implements OpEvaluator {
  @Override
  public List<HostTensor> evaluate(Node node, List<HostTensor> inputs, Limit limit) {
    HostTensor first = inputs.get(0);
    int rank = first.rank();
    int axis = Indexing.axis(node.intAttribute("axis", 0), rank);
    long[] outDims = first.dims();
    outDims[axis] = 0;
    for (HostTensor input : inputs) {
      long[] dims = input.dims();
      if (dims.length != rank || input.type() != first.type()) {
        throw new EvaluationException("Concat inputs differ in rank or type: " + first + " and " + input);
      }
      for (int i = 0; i < rank; i++) {
        if (i != axis && dims[i] != first.dims()[i]) {
          throw new EvaluationException("Concat inputs differ off the axis: " + first + " and " + input);
        }
      }
      outDims[axis] += dims[axis];
    }
    limit.check(outDims);
    long outer = 1;
    for (int i = 0; i < axis; i++) {
      outer *= outDims[i];
    }
    int total = 0;
    double[] reals = first.isReal() ? new double[(int) HostTensor.elementCount(outDims)] : null;
    long[] integers = first.isReal() ? null : new long[(int) HostTensor.elementCount(outDims)];
    for (long o = 0; o < outer; o++) {
      for (HostTensor input : inputs) {
        int block = (int) (input.count() / Math.max(outer, 1));
        int from = (int) (o * block);
        if (reals != null) {
          System.arraycopy(input.reals(), from, reals, total, block);
        } else {
          System.arraycopy(input.integers(), from, integers, total, block);
        }
        total += block;
      }
    }
    return List.of(new HostTensor(first.type(), outDims, reals, integers));
  }
}
