package dev.kiln.validator.lowering;

import dev.kiln.graph.Microsoft;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.OpType;
import dev.kiln.graph.Value;
import java.util.Arrays;
import java.util.List;

/**
 * com.microsoft.SkipGroupNorm(X, gamma, beta, skip[, bias]) → Y[, S] ⇒ standard ops.
 *
 * <p>Spec: s = x + skip + bias; y = GroupNorm(s) with the same attributes as GroupNorm; the optional second
 * output is s itself. The skip is [N, H, W, C], [N, 1, 1, C] or [N, C] in channels-last layout (the
 * channels-first analogues otherwise); a rank-2 skip is per sample and channel, so it is unsqueezed onto the
 * spatial axes before the add. The bias is per channel.
 */
final class SkipGroupNormLowering implements OpLowering {
  @Override
  public OpType op() {
    return Microsoft.SKIP_GROUP_NORM;
  }

  @Override
  public List<Value> lower(Node node, Emitter emitter) {
    Value x = node.input(0);
    Value skip = node.input(3);
    if (skip == null) {
      throw emitter.failure("it lacks the required input skip");
    }
    boolean channelsLast = node.intAttribute("channels_last", 1) != 0;
    int rank = emitter.rank(x, "input X");
    int skipRank = emitter.rank(skip, "input skip");
    if (skipRank == 2 && rank > 2) {
      long[] spatialAxes = new long[rank - 2];
      for (int i = 0; i < spatialAxes.length; i++) {
        spatialAxes[i] = channelsLast ? 1 + i : 2 + i;
      }
      skip = emitter.unsqueeze(skip, spatialAxes);
    } else if (skipRank != rank) {
      throw emitter.failure("skip has rank " + skipRank + "; expected " + rank + " or 2");
    }
    Value sum = emitter.op(Onnx.ADD, x, skip);
    Value bias = node.input(4);
    if (bias != null) {
      if (!channelsLast) {
        long channels = GroupNormLowering.channelCount(emitter, node.input(1));
        long[] perChannel = new long[rank - 1];
        Arrays.fill(perChannel, 1);
        perChannel[0] = channels;
        bias = emitter.reshape(bias, perChannel);
      }
      sum = emitter.op(Onnx.ADD, sum, bias);
    }
    Value y = GroupNormLowering.normalize(emitter, node, sum, node.input(1), node.input(2));
    return node.outputCount() > 1 ? Arrays.asList(y, sum) : Arrays.asList(y);
  }
}
