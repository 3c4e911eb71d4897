package dev.kiln.validator.lowering;

import dev.kiln.graph.DataType;
import dev.kiln.graph.Microsoft;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.OpType;
import dev.kiln.graph.Value;
import java.util.Arrays;
import java.util.List;

/**
 * com.microsoft.BiasSplitGelu(X[N, S, D], bias[D]) → Y[N, S, D/2] ⇒ standard ops.
 *
 * <p>Spec: after adding the bias, the last axis is cut into two halves of equal size; the left half is
 * multiplied by the Gelu of the right half. Gelu is the exact one, x · ½(1 + erf(x/√2)), spelled with Erf so
 * that every opset Kiln reads has it (the Gelu operator arrived in opset 20).
 */
final class BiasSplitGeluLowering implements OpLowering {
  @Override
  public OpType op() {
    return Microsoft.BIAS_SPLIT_GELU;
  }

  @Override
  public List<Value> lower(Node node, Emitter emitter) {
    Value x = node.input(0);
    Value bias = node.input(1);
    long hidden = GroupNormLowering.channelCount(emitter, bias);
    if (hidden % 2 != 0) {
      throw emitter.failure("hidden size " + hidden + " is odd and cannot be split in halves");
    }
    DataType type = emitter.dataType(x);
    DataType compute = Emitter.computeType(type);
    Value sum = emitter.op(Onnx.ADD, emitter.castTo(x, compute), emitter.castTo(bias, compute));
    List<Value> halves = emitter.split(sum, -1, hidden / 2, hidden / 2);
    Value left = halves.get(0);
    Value right = halves.get(1);
    Value erf = emitter.op(Onnx.ERF, emitter.op(Onnx.DIV, right, emitter.scalar("sqrt2", compute, Math.sqrt(2))));
    Value gelu = emitter.op(Onnx.MUL,
        emitter.op(Onnx.MUL, right, emitter.scalar("half", compute, 0.5)),
        emitter.op(Onnx.ADD, erf, emitter.scalar("one", compute, 1)));
    return Arrays.asList(emitter.castTo(emitter.op(Onnx.MUL, left, gelu), type));
  }
}
