package dev.kiln.optimizer.folding;

import dev.kiln.graph.Attribute;
import dev.kiln.graph.Node;
import java.util.List;

/** The axes of Squeeze/Unsqueeze/ReduceX: the {@code axes} attribute before opset 13, the second input after. */
final class AxesInput {
  private AxesInput() {}

  /** The axes, or null when neither the attribute nor the input gives them. */
  static long[] of(Node node, List<HostTensor> inputs) {
    if (inputs.size() > 1 && inputs.get(1) != null) {
      return inputs.get(1).longs();
    }
    Attribute axes = node.attribute("axes");
    return axes == null ? null : axes.asLongs();
  }
}
