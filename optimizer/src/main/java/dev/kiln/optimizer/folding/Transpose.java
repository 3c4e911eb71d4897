package dev.kiln.optimizer.folding;

import dev.kiln.graph.Attribute;
import dev.kiln.graph.Node;
import java.util.List;

/** Transpose by {@code perm} (reversed axes when absent). */
final class Transpose implements OpEvaluator {
  @Override
  public List<HostTensor> evaluate(Node node, List<HostTensor> inputs, Limit limit) {
    HostTensor data = inputs.get(0);
    int rank = data.rank();
    Attribute permAttribute = node.attribute("perm");
    long[] perm = new long[rank];
    for (int i = 0; i < rank; i++) {
      perm[i] = permAttribute == null ? rank - 1 - i : permAttribute.asLongs()[i];
    }
    if (permAttribute != null && permAttribute.asLongs().length != rank) {
      throw new EvaluationException("Transpose perm of " + permAttribute.asLongs().length + " axes for rank " + rank);
    }
    long[] dims = data.dims();
    long[] outDims = new long[rank];
    for (int i = 0; i < rank; i++) {
      outDims[i] = dims[Indexing.axis(perm[i], rank)];
    }
    int count = limit.check(outDims);
    long[] strides = Indexing.strides(dims);
    int[] from = new int[count];
    long[] position = new long[rank];
    for (int flat = 0; flat < count; flat++) {
      long source = 0;
      for (int axis = 0; axis < rank; axis++) {
        source += position[axis] * strides[(int) perm[axis]];
      }
      from[flat] = (int) source;
      for (int axis = rank - 1; axis >= 0; axis--) {
        if (++position[axis] < outDims[axis]) {
          break;
        }
        position[axis] = 0;
      }
    }
    return List.of(data.gathered(outDims, from));
  }
}
