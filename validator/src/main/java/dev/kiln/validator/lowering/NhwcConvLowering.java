package dev.kiln.validator.lowering;

import dev.kiln.graph.Attribute;
import dev.kiln.graph.Microsoft;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.OpType;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Value;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * com.microsoft.NhwcConv(X[N, spatial..., C], W[M, kernel..., C/group], B?) ⇒ Transpose → Conv → Transpose.
 *
 * <p>NhwcConv is Conv with channels-last activations: input and output are [N, H, W, C] and the filter is
 * stored output-channel first, channels last (OHWI, as ORT's own diffusion fusion writes it). Both are moved to
 * channels-first with a Transpose node — the weight too, so a large external weight is never copied — and every
 * Conv attribute (kernel_shape, strides, pads, dilations, group, auto_pad) means the same on the spatial axes.
 */
final class NhwcConvLowering implements OpLowering {
  @Override
  public OpType op() {
    return Microsoft.NHWC_CONV;
  }

  @Override
  public List<Value> lower(Node node, Emitter emitter) {
    Value x = node.input(0);
    Value weight = node.input(1);
    Shape weightShape = emitter.shape(weight);
    int rank = weightShape != null ? weightShape.rank() : emitter.rank(x, "input X");
    if (rank < 3) {
      throw emitter.failure("rank " + rank + " has no spatial axis");
    }
    long[] toChannelsFirst = new long[rank];
    long[] toChannelsLast = new long[rank];
    toChannelsFirst[1] = rank - 1;
    toChannelsLast[rank - 1] = 1;
    for (int axis = 2; axis < rank; axis++) {
      toChannelsFirst[axis] = axis - 1;
      toChannelsLast[axis - 1] = axis;
    }
    List<Value> inputs = new ArrayList<>();
    inputs.add(emitter.transpose(x, toChannelsFirst));
    inputs.add(emitter.transpose(weight, toChannelsFirst));
    if (node.input(2) != null) {
      inputs.add(node.input(2));
    }
    Value convolved = emitter.op(Onnx.CONV, inputs, node.attributes().toArray(new Attribute[0]));
    return Arrays.asList(emitter.transpose(convolved, toChannelsLast));
  }
}
