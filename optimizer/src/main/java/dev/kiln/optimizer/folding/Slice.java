package dev.kiln.optimizer.folding;

import dev.kiln.graph.Attribute;
import dev.kiln.graph.Node;
import java.util.List;

/**
 * Slice: starts/ends/axes/steps as inputs (opset 10+) or attributes (opset 1–9); bounds clamped as ONNX
 * specifies, negative steps walking backwards.
 */
final class Slice implements OpEvaluator {
  @Override
  public List<HostTensor> evaluate(Node node, List<HostTensor> inputs, Limit limit) {
    HostTensor data = inputs.get(0);
    long[] starts;
    long[] ends;
    long[] axes = null;
    long[] steps = null;
    if (inputs.size() >= 3) {
      starts = inputs.get(1).longs();
      ends = inputs.get(2).longs();
      if (inputs.size() > 3 && inputs.get(3) != null) {
        axes = inputs.get(3).longs();
      }
      if (inputs.size() > 4 && inputs.get(4) != null) {
        steps = inputs.get(4).longs();
      }
    } else {
      Attribute startsAttribute = node.attribute("starts");
      Attribute endsAttribute = node.attribute("ends");
      if (startsAttribute == null || endsAttribute == null) {
        throw new EvaluationException("Slice without starts and ends");
      }
      starts = startsAttribute.asLongs();
      ends = endsAttribute.asLongs();
      Attribute axesAttribute = node.attribute("axes");
      axes = axesAttribute == null ? null : axesAttribute.asLongs();
    }
    long[] dims = data.dims();
    int rank = dims.length;
    long[] begin = new long[rank];
    long[] step = new long[rank];
    long[] outDims = dims.clone();
    java.util.Arrays.fill(step, 1);
    for (int i = 0; i < starts.length; i++) {
      int axis = Indexing.axis(axes == null ? i : axes[i], rank);
      long stride = steps == null ? 1 : steps[i];
      if (stride == 0) {
        throw new EvaluationException("Slice step 0 on axis " + axis);
      }
      long size = dims[axis];
      long start = starts[i] < 0 ? starts[i] + size : starts[i];
      long end = ends[i] < 0 && ends[i] != Long.MIN_VALUE ? ends[i] + size : ends[i];
      if (stride > 0) {
        start = Math.max(0, Math.min(size, start));
        end = Math.max(0, Math.min(size, end));
        outDims[axis] = Math.max(0, (end - start + stride - 1) / stride);
      } else {
        start = Math.max(-1, Math.min(size - 1, start));
        end = Math.max(-1, Math.min(size - 1, end));
        outDims[axis] = Math.max(0, (start - end + (-stride) - 1) / (-stride));
      }
      begin[axis] = start;
      step[axis] = stride;
    }
    int count = limit.check(outDims);
    long[] strides = Indexing.strides(dims);
    int[] from = new int[count];
    long[] position = new long[rank];
    for (int flat = 0; flat < count; flat++) {
      long source = 0;
      for (int axis = 0; axis < rank; axis++) {
        source += (begin[axis] + position[axis] * step[axis]) * strides[axis];
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
