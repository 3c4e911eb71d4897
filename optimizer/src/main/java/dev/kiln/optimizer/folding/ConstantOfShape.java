package dev.kiln.optimizer.folding;

import dev.kiln.graph.Attribute;
import dev.kiln.graph.DataType;
import dev.kiln.graph.Node;
import java.util.Arrays;
import java.util.List;

/** ConstantOfShape: the {@code value} attribute's one element repeated (float 0 when absent). */
final class ConstantOfShape implements OpEvaluator {
  @Override
  public List<HostTensor> evaluate(Node node, List<HostTensor> inputs, Limit limit) {
    long[] dims = inputs.get(0).longs();
    int count = limit.check(dims);
    Attribute value = node.attribute("value");
    HostTensor fill = value == null ? HostTensor.ofDoubles(DataType.FLOAT, new long[] {1}, new double[] {0})
        : HostTensor.of(value.asTensor());
    if (fill == null || fill.count() != 1) {
      throw new EvaluationException("ConstantOfShape value is not one element of an evaluated type");
    }
    if (fill.isReal()) {
      double[] out = new double[count];
      Arrays.fill(out, fill.real(0));
      return List.of(HostTensor.ofDoubles(fill.type(), dims, out));
    }
    long[] out = new long[count];
    Arrays.fill(out, fill.integer(0));
    return List.of(HostTensor.ofLongs(fill.type(), dims, out));
  }
}
