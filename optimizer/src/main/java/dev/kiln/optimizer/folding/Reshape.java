package dev.kiln.optimizer.folding;

import dev.kiln.graph.Node;
import java.util.Arrays;
import java.util.List;

/** Reshape: 0 copies the input dim (unless allowzero), one -1 takes what is left; the element count must match. */
final class Reshape implements OpEvaluator {
  @Override
  public List<HostTensor> evaluate(Node node, List<HostTensor> inputs, Limit limit) {
    HostTensor data = inputs.get(0);
    long[] shape = inputs.size() > 1 && inputs.get(1) != null ? inputs.get(1).longs() : node.attribute("shape") == null
        ? null : node.attribute("shape").asLongs();
    if (shape == null) {
      throw new EvaluationException("Reshape without a shape");
    }
    return List.of(data.withDims(target(data.dims(), shape, node.intAttribute("allowzero", 0) != 0)));
  }

  /** The dims {@code shape} asks of an input of {@code dims}; an exception when they cannot hold the same elements. */
  static long[] target(long[] dims, long[] shape, boolean allowZero) {
    long[] out = shape.clone();
    int inferred = -1;
    long known = 1;
    for (int i = 0; i < out.length; i++) {
      if (out[i] == 0 && !allowZero) {
        if (i >= dims.length) {
          throw new EvaluationException("reshape to " + Arrays.toString(shape) + " copies dim " + i + " of " + Arrays.toString(dims));
        }
        out[i] = dims[i];
      }
      if (out[i] == -1) {
        if (inferred >= 0) {
          throw new EvaluationException("reshape to " + Arrays.toString(shape) + " has two -1 dims");
        }
        inferred = i;
      } else if (out[i] < 0) {
        throw new EvaluationException("reshape to " + Arrays.toString(shape) + " has a negative dim");
      } else {
        known *= out[i];
      }
    }
    long count = HostTensor.elementCount(dims);
    if (inferred >= 0) {
      if (known == 0 || count % known != 0) {
        throw new EvaluationException("reshape of " + Arrays.toString(dims) + " (" + count + " elements) to "
            + Arrays.toString(shape) + " does not divide");
      }
      out[inferred] = count / known;
    } else if (known != count) {
      throw new EvaluationException("reshape of " + Arrays.toString(dims) + " (" + count + " elements) to "
          + Arrays.toString(shape) + " changes the element count");
    }
    return out;
  }
}
