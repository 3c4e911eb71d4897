package dev.kiln.optimizer.folding;

import dev.kiln.graph.Node;
import java.util.Arrays;
import java.util.List;

/** Shape (opset 15's start/end included): the input's dims as an int64 vector; only the dims are read. */
final class ShapeOf implements OpEvaluator {
  @Override
  public List<HostTensor> evaluate(Node node, List<HostTensor> inputs, Limit limit) {
    return List.of(of(node, inputs.get(0).dims()));
  }

  /** What the node answers for an input of {@code dims} (the folding pass calls this with inferred dims). */
  static HostTensor of(Node node, long[] dims) {
    int rank = dims.length;
    long start = clamp(node.intAttribute("start", 0), rank);
    long end = clamp(node.intAttribute("end", rank), rank);
    return HostTensor.int64Vector(start >= end ? new long[0] : Arrays.copyOfRange(dims, (int) start, (int) end));
  }

  private static long clamp(long index, int rank) {
    long positive = index < 0 ? index + rank : index;
    return Math.max(0, Math.min(rank, positive));
  }
}
