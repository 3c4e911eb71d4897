package dev.kiln.optimizer.folding;

import dev.kiln.graph.Node;
import java.util.List;

/** Gather along {@code axis} with negative indices counted from the end. */
final class Gather implements OpEvaluator {
  @Override
  public List<HostTensor> evaluate(Node node, List<HostTensor> inputs, Limit limit) {
    HostTensor data = inputs.get(0);
    HostTensor indices = inputs.get(1);
    int axis = Indexing.axis(node.intAttribute("axis", 0), data.rank());
    long[] dataDims = data.dims();
    long[] indexDims = indices.dims();
    long[] outDims = new long[dataDims.length - 1 + indexDims.length];
    int at = 0;
    for (int i = 0; i < axis; i++) {
      outDims[at++] = dataDims[i];
    }
    for (long dim : indexDims) {
      outDims[at++] = dim;
    }
    for (int i = axis + 1; i < dataDims.length; i++) {
      outDims[at++] = dataDims[i];
    }
    int count = limit.check(outDims);
    long outer = 1;
    for (int i = 0; i < axis; i++) {
      outer *= dataDims[i];
    }
    long inner = 1;
    for (int i = axis + 1; i < dataDims.length; i++) {
      inner *= dataDims[i];
    }
    long axisSize = dataDims[axis];
    int indexCount = indices.count();
    int[] from = new int[count];
    int flat = 0;
    for (long o = 0; o < outer; o++) {
      for (int k = 0; k < indexCount; k++) {
        long index = indices.integer(k);
        if (index < -axisSize || index >= axisSize) {
          throw new EvaluationException("index " + index + " is out of range for axis " + axis + " of size " + axisSize);
        }
        long position = index < 0 ? index + axisSize : index;
        for (long i = 0; i < inner; i++) {
          from[flat++] = (int) ((o * axisSize + position) * inner + i);
        }
      }
    }
    return List.of(data.gathered(outDims, from));
  }
}
