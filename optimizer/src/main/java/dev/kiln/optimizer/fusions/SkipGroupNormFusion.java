package dev.kiln.optimizer.fusions;

import dev.kiln.graph.Attribute;
import dev.kiln.graph.Microsoft;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import dev.kiln.graph.infer.DimArithmetic;
import dev.kiln.optimizer.engine.Builder;
import dev.kiln.optimizer.engine.Check;
import dev.kiln.optimizer.engine.Constants;
import dev.kiln.optimizer.engine.Match;
import dev.kiln.optimizer.engine.NodeKey;
import dev.kiln.optimizer.engine.Pattern;
import dev.kiln.optimizer.engine.PatternBuilder;
import dev.kiln.optimizer.engine.Rule;
import dev.kiln.optimizer.engine.ValueKey;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * {@code GroupNorm(Transpose(Add(x, skip)))} (the form {@link GroupNormFusion} emits, or a channels-first
 * GroupNorm of the sum)  ⇒  {@code com.microsoft.SkipGroupNorm(xᵀ, γ, β, skipᵀ[, bias])}.
 *
 * <p>The residual sums of a UNet (ResNet output, time-embedding add, Transformer2D output) feed the next
 * GroupNorm. The skip may be the full shape or per sample and channel ([N, C, 1, 1], the time embedding), the
 * two forms the CUDA kernel broadcasts (batch axes as {@link ResidualShapes} allows); a per-channel skip that was
 * unsqueezed from [N, C] is fed as that [N, C] tensor, which the kernel also takes. When x is itself {@code Add(y, bias[C,1,1])} with no other user, the
 * bias moves into the fused op's fifth input. The second output S (the sum) is emitted only when something
 * other than the GroupNorm reads the sum.
 */
public final class SkipGroupNormFusion implements Rule {
  @Override
  public String name() {
    return "skip-group-norm";
  }

  @Override
  public Pattern pattern(PatternBuilder p) {
    var sum = p.op(Onnx.ADD, p.input(Values.A), p.input(Values.B)).mayEscape().as(Nodes.SUM);
    var channelsLast = p.op(Microsoft.GROUP_NORM, p.op(Onnx.TRANSPOSE, sum).as(Nodes.LAYOUT), p.constant(Values.GAMMA),
        p.constant(Values.BETA)).as(Nodes.NORM);
    var channelsFirst =
        p.op(Microsoft.GROUP_NORM, sum, p.constant(Values.GAMMA), p.constant(Values.BETA)).as(Nodes.NORM);
    return p.anyOf(channelsLast, channelsFirst);
  }

  /** Which operand is the input and which the skip, and the skip's form. */
  private record Operands(Value input, Value skip, boolean perChannelSkip) {}

  private static Operands operands(Match m) {
    Shape sum = m.shape(m.node(Nodes.SUM).output());
    for (int order = 0; order < 2; order++) {
      Value input = m.value(order == 0 ? Values.A : Values.B);
      Value skip = m.value(order == 0 ? Values.B : Values.A);
      if (!sameShape(m.shape(input), sum)) {
        continue;
      }
      Shape skipShape = m.shape(skip);
      if (sameShape(skipShape, sum)) {
        return new Operands(input, skip, false);
      }
      if (skipShape != null && skipShape.rank() == 4 && ResidualShapes.sameBatch(sum.dim(0), skipShape.dim(0))
          && DimArithmetic.certainlyEqual(skipShape.dim(1), sum.dim(1)) && isOne(skipShape.dim(2))
          && isOne(skipShape.dim(3))) {
        return new Operands(input, skip, true);
      }
    }
    return null;
  }

  @Override
  public Check check(Match m) {
    Node norm = m.node(Nodes.NORM);
    boolean transposed = m.hasNode(Nodes.LAYOUT);
    if (transposed != (norm.intAttribute("channels_last", 1) != 0)) {
      return Check.fail("GroupNorm layout does not match its input (channels_last="
          + norm.intAttribute("channels_last", 1) + ")");
    }
    if (transposed && !ChannelsLast.isTranspose(m.node(Nodes.LAYOUT), ChannelsLast.TO_NHWC)) {
      return Check.fail("the Transpose before GroupNorm is not NCHW → NHWC");
    }
    if (Constants.tensor(m.value(Values.A)) != null || Constants.tensor(m.value(Values.B)) != null) {
      return Check.fail("one operand of the sum is a constant (a bias, not a skip)");
    }
    Shape sum = m.shape(m.node(Nodes.SUM).output());
    if (sum == null || sum.rank() != 4) {
      return Check.fail("the sum is not known to be 4-D NCHW: " + sum);
    }
    if (operands(m) == null) {
      return Check.fail("operand shapes " + m.shape(Values.A) + " and " + m.shape(Values.B)
          + " are not input [N,C,H,W] plus skip [N,C,H,W] or [N,C,1,1]");
    }
    return Check.ok();
  }

  @Override
  public Value rewrite(Match m, Builder b) {
    Node norm = m.node(Nodes.NORM);
    boolean transposed = m.hasNode(Nodes.LAYOUT);
    Operands operands = operands(m);
    Value input = operands.input();
    long channels = ((Shape.Known) m.shape(m.node(Nodes.SUM).output()).dim(1)).value();
    Value bias = null;
    Node producer = input.producer();
    if (producer != null && producer.is(Onnx.ADD) && input.uses().size() == 1 && !input.isGraphOutput()) {
      for (int operand = 0; operand < 2 && bias == null; operand++) {
        Tensor constant = Constants.tensor(producer.input(operand));
        float[] perChannel = ChannelsLast.perChannel(constant, channels);
        if (perChannel != null && constant.elementCount() == channels
            && Constants.tensor(producer.input(1 - operand)) == null) {
          // SkipGroupNorm's bias is of the activation type T and shaped [C].
          bias = b.initializer("bias", Tensor.ofBytes(constant.dataType(), new long[] {channels}, constant.bytes()));
          input = producer.input(1 - operand);
        }
      }
    }
    Value skip = operands.skip();
    if (transposed) {
      input = ChannelsLast.toNhwc(b, input);
      Value perSample = operands.perChannelSkip() ? unsqueezedFrom(m, skip, channels) : null;
      // The kernel takes a [N, C] skip as it is; a time embedding unsqueezed to [N, C, 1, 1] needs no Transpose.
      skip = perSample != null ? perSample : ChannelsLast.toNhwc(b, skip);
    }
    List<Value> inputs = new ArrayList<>(Arrays.asList(input, m.value(Values.GAMMA), m.value(Values.BETA), skip));
    if (bias != null) {
      inputs.add(bias);
    }
    Value sum = m.node(Nodes.SUM).output();
    boolean sumNeeded = sum.consumerCount() > 1;
    Attribute[] attributes = norm.attributes().toArray(new Attribute[0]);
    if (!sumNeeded) {
      return b.op(Microsoft.SKIP_GROUP_NORM, inputs, attributes);
    }
    List<Value> outputs = b.ops(Microsoft.SKIP_GROUP_NORM, 2, inputs, attributes);
    b.replace(sum, transposed ? ChannelsLast.toNchw(b, outputs.get(1)) : outputs.get(1));
    return outputs.get(0);
  }

  /** The [N, C] tensor that {@code skip} [N, C, 1, 1] was unsqueezed from (axes 2 and 3), or null. */
  private static Value unsqueezedFrom(Match m, Value skip, long channels) {
    java.util.Set<Long> added = new java.util.HashSet<>();
    Value current = skip;
    while (current.producer() != null && current.producer().is(Onnx.UNSQUEEZE)) {
      Node unsqueeze = current.producer();
      long[] axes = unsqueeze.attribute("axes") != null ? unsqueeze.attribute("axes").asLongs()
          : m.shapes().knownElements(unsqueeze.input(1));
      if (axes == null) {
        return null;
      }
      for (long axis : axes) {
        added.add(axis);
      }
      current = unsqueeze.input(0);
    }
    Shape shape = m.shape(current);
    boolean perSample = shape != null && shape.rank() == 2 && shape.dim(1) instanceof Shape.Known known
        && known.value() == channels;
    return perSample && added.equals(java.util.Set.of(2L, 3L)) ? current : null;
  }

  private static boolean sameShape(Shape input, Shape sum) {
    return ResidualShapes.sameShape(sum, input);
  }

  private static boolean isOne(Shape.Dim dim) {
    return dim instanceof Shape.Known known && known.value() == 1;
  }

  /** What the pattern binds values to. */
  private enum Values implements ValueKey { A, B, GAMMA, BETA }
  private enum Nodes implements NodeKey { SUM, NORM, LAYOUT }
}
