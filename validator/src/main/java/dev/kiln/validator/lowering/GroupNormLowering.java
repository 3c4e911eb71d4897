package dev.kiln.validator.lowering;

import dev.kiln.graph.DataType;
import dev.kiln.graph.Microsoft;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.OpType;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Value;
import java.util.Arrays;
import java.util.List;

/**
 * com.microsoft.GroupNorm(X, gamma[C], beta[C]) {epsilon, groups, activation, channels_last} ⇒ standard ops.
 *
 * <p>Spec: y = gamma * (x - mean) / sqrt(variance + epsilon) + beta, with mean and (population) variance taken
 * per sample over the channels of one group and all spatial positions; activation 1 applies SiLU, y * sigmoid(y).
 * channels_last (default 1) means X is [N, H, W, C]; otherwise [N, C, H, W].
 *
 * <p>The lowering computes in float64 and casts back, so that a comparison against the unfused graph measures
 * the rewrite rather than float32 summation order.
 *
 * <p>Channels-last is decomposed without leaving that layout: [N, H, W, C] → Reshape [N, H·W, G, C/G] →
 * ReduceMean over axes 1 and 3 → centre, variance, normalise → Reshape back → per-channel affine, which then
 * broadcasts on the last axis directly. Channels-first groups as [N, G, C/G·H·W] and reduces axis 2.
 */
final class GroupNormLowering implements OpLowering {
  @Override
  public OpType op() {
    return Microsoft.GROUP_NORM;
  }

  @Override
  public List<Value> lower(Node node, Emitter emitter) {
    Value y = normalize(emitter, node, node.input(0), node.input(1), node.input(2));
    return Arrays.asList(y);
  }

  /** The whole GroupNorm of {@code x} with the attributes of {@code node}, in x's own element type. */
  static Value normalize(Emitter emitter, Node node, Value x, Value gamma, Value beta) {
    long groups = OpLowering.requiredInt(node, "groups", emitter);
    long activation = OpLowering.requiredInt(node, "activation", emitter);
    if (activation != 0 && activation != 1) {
      throw emitter.failure("activation " + activation + " is neither 0 (none) nor 1 (SiLU)");
    }
    float epsilon = node.floatAttribute("epsilon", 1e-5f);
    boolean channelsLast = node.intAttribute("channels_last", 1) != 0;
    long channels = channelCount(emitter, gamma);
    if (groups <= 0 || channels % groups != 0) {
      throw emitter.failure(channels + " channels do not split into " + groups + " groups");
    }
    int rank = emitter.rank(x, "input X");
    if (rank < 3) {
      throw emitter.failure("input X has rank " + rank + "; GroupNorm needs a batch, channel and spatial axis");
    }
    DataType type = emitter.dataType(x);
    // Statistics in float64: a float32 ReduceMean over a large group (H·W·C/G elements, 12k for a 48×64 latent)
    // sums naively and drifts by ~1e-4 relative, which would be charged to the rewrite being proved.
    DataType compute = DataType.DOUBLE;
    Value input = emitter.castTo(x, compute);

    Value grouped;
    long[] reducedAxes;
    if (channelsLast) {
      grouped = emitter.reshape(input, 0, -1, groups, channels / groups);
      reducedAxes = new long[] {1, 3};
    } else {
      grouped = emitter.reshape(input, 0, groups, -1);
      reducedAxes = new long[] {2};
    }
    Value mean = emitter.reduceMean(grouped, reducedAxes);
    Value centered = emitter.op(Onnx.SUB, grouped, mean);
    Value variance = emitter.reduceMean(emitter.op(Onnx.MUL, centered, centered), reducedAxes);
    Value deviation = emitter.op(Onnx.SQRT,
        emitter.op(Onnx.ADD, variance, emitter.scalar("epsilon", compute, epsilon)));
    Value normalized = emitter.op(Onnx.DIV, centered, deviation);
    Value restored = emitter.op(Onnx.RESHAPE, normalized, emitter.op(Onnx.SHAPE, input));

    Value scale = emitter.castTo(gamma, compute);
    Value shift = emitter.castTo(beta, compute);
    if (!channelsLast) {
      // [C] → [C, 1, ..., 1] so that it lines up with axis 1 of [N, C, spatial...].
      long[] perChannel = new long[rank - 1];
      Arrays.fill(perChannel, 1);
      perChannel[0] = channels;
      scale = emitter.reshape(scale, perChannel);
      shift = emitter.reshape(shift, perChannel);
    }
    Value affine = emitter.castTo(emitter.op(Onnx.ADD, emitter.op(Onnx.MUL, restored, scale), shift), type);
    if (activation == 1) {
      // SiLU in x's own type, after the statistics: ORT's optimizer (level 2 and up) fuses x * Sigmoid(x) into
      // QuickGelu, which has no float64 kernel, so a float64 SiLU made the lowered graph unloadable with
      // optimizations on (as the runner opens models).
      affine = emitter.op(Onnx.MUL, affine, emitter.op(Onnx.SIGMOID, affine));
    }
    return affine;
  }

  /** C from gamma's static shape [C]. */
  static long channelCount(Emitter emitter, Value gamma) {
    Shape shape = emitter.shape(gamma);
    if (shape == null || shape.rank() != 1 || !(shape.dim(0) instanceof Shape.Known known)) {
      throw emitter.failure("gamma '" + gamma.name() + "' must have a known shape [C], has " + shape);
    }
    return known.value();
  }
}
