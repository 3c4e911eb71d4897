package dev.kiln.optimizer.fusions;

import dev.kiln.graph.Attribute;
import dev.kiln.graph.DataType;
import dev.kiln.graph.Microsoft;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Use;
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
import java.util.Arrays;
import java.util.List;

/**
 * {@code Reshape[0,G,-1] → InstanceNormalization(1, 0, ε) → Reshape(Shape(x)) → Mul(γ[C,1,1]) → Add(β[C,1,1])},
 * optionally followed by SiLU {@code Mul(y, Sigmoid(y))}  ⇒  {@code com.microsoft.GroupNorm(x, γ[C], β[C])}
 * with {@code activation} 1 for the SiLU tail.
 *
 * <p>ORT's CUDA kernel only runs channels-last (it returns NOT_IMPLEMENTED for channels_last=0) and only takes
 * float32 γ/β, so the channels-last form is emitted between Transposes (NCHW → NHWC → NCHW) with float32
 * vectors; {@link TransposeCancellation} removes the Transpose pairs that meet a neighbouring NhwcConv.
 */
public final class GroupNormFusion implements Rule {
  private final boolean channelsLast;

  private GroupNormFusion(boolean channelsLast) {
    this.channelsLast = channelsLast;
  }

  /** Emits channels_last=1 between Transposes: what ORT's CUDA kernel runs. */
  public static GroupNormFusion channelsLast() {
    return new GroupNormFusion(true);
  }

  /** Emits channels_last=0 on the NCHW tensor (no CUDA kernel; for EPs that implement that form). */
  public static GroupNormFusion channelsFirst() {
    return new GroupNormFusion(false);
  }

  @Override
  public String name() {
    return "group-norm";
  }

  @Override
  public Pattern pattern(PatternBuilder p) {
    var grouped = p.op(Onnx.RESHAPE, p.input(Values.X), p.constant(Values.GROUP_SHAPE));
    var normalized = p.op(Onnx.INSTANCE_NORMALIZATION, grouped, p.constant(Values.ONES), p.constant(Values.ZEROS))
        .as(Nodes.NORM);
    var restored = p.op(Onnx.RESHAPE, normalized, p.any(Values.ORIGINAL_SHAPE));
    var affine = p.op(Onnx.ADD, p.op(Onnx.MUL, restored, p.constant(Values.GAMMA)), p.constant(Values.BETA))
        .as(Nodes.AFFINE);
    var silu = p.op(Onnx.MUL, affine, p.op(Onnx.SIGMOID, affine)).as(Nodes.SILU);
    return p.anyOf(silu, affine);
  }

  @Override
  public Check check(Match m) {
    long[] groupShape = m.constant(Values.GROUP_SHAPE).longs();
    if (groupShape.length != 3 || groupShape[0] != 0 || groupShape[2] != -1 || groupShape[1] <= 0) {
      return Check.fail("group reshape target " + Arrays.toString(groupShape) + " is not [0, G, -1]");
    }
    long groups = groupShape[1];
    if (!m.hasNode(Nodes.SILU) && siluFollows(m.node(Nodes.AFFINE).output())) {
      return Check.fail("a SiLU follows; the site fuses with activation=1 at its Mul");
    }
    if (!Constants.allEqual(m.constant(Values.ONES), 1.0) || m.constant(Values.ONES).elementCount() != groups) {
      return Check.fail("InstanceNormalization scale is not " + groups + " ones");
    }
    if (!Constants.allEqual(m.constant(Values.ZEROS), 0.0) || m.constant(Values.ZEROS).elementCount() != groups) {
      return Check.fail("InstanceNormalization bias is not " + groups + " zeros");
    }
    Shape x = m.shape(Values.X);
    if (x == null) {
      return Check.fail("shape of x unknown");
    }
    if (x.rank() != 4) {
      return Check.fail("x has rank " + x.rank() + "; GroupNorm takes 4-D NCHW");
    }
    if (!(x.dim(1) instanceof Shape.Known channelDim)) {
      return Check.fail("channel count of x unknown");
    }
    long channels = channelDim.value();
    if (channels % groups != 0) {
      return Check.fail(channels + " channels do not divide into " + groups + " groups");
    }
    if (!restoresShapeOf(m, m.value(Values.ORIGINAL_SHAPE), m.value(Values.X), x)) {
      return Check.fail("the restoring Reshape's target is not the shape of x");
    }
    if (ChannelsLast.perChannel(m.constant(Values.GAMMA), channels) == null) {
      return Check.fail("gamma of shape " + m.constant(Values.GAMMA).shape() + " is not per-channel [C, 1, 1]");
    }
    if (ChannelsLast.perChannel(m.constant(Values.BETA), channels) == null) {
      return Check.fail("beta of shape " + m.constant(Values.BETA).shape() + " is not per-channel [C, 1, 1]");
    }
    DataType type = m.shapes().dataType(m.value(Values.X));
    if (!ChannelsLast.hasCudaKernelType(type)) {
      return Check.fail("element type " + type + " has no GroupNorm kernel");
    }
    return Check.ok();
  }

  /** The affine output's only users are Sigmoid(y) and Mul(y, Sigmoid(y)). */
  static boolean siluFollows(Value y) {
    if (y.isGraphOutput() || y.uses().size() != 2) {
      return false;
    }
    Node sigmoid = null;
    Node product = null;
    for (Use use : y.uses()) {
      if (use.node().is(Onnx.SIGMOID)) {
        sigmoid = use.node();
      } else if (use.node().is(Onnx.MUL)) {
        product = use.node();
      }
    }
    return sigmoid != null && product != null && product.inputs().contains(sigmoid.output());
  }

  /** Shape(x) itself, or a target that inference proves equal to x's shape. */
  static boolean restoresShapeOf(Match m, Value target, Value x, Shape shapeOfX) {
    Node producer = target.producer();
    if (producer != null && producer.is(Onnx.SHAPE) && producer.input(0) == x && producer.attribute("start") == null
        && producer.attribute("end") == null) {
      return true;
    }
    List<Shape.Dim> elements = m.shapes().elements(target);
    if (elements == null || elements.size() != shapeOfX.rank()) {
      return false;
    }
    for (int axis = 0; axis < elements.size(); axis++) {
      if (!DimArithmetic.certainlyEqual(elements.get(axis), shapeOfX.dim(axis))) {
        return false;
      }
    }
    return true;
  }

  @Override
  public Value rewrite(Match m, Builder b) {
    long groups = m.constant(Values.GROUP_SHAPE).longs()[1];
    long channels = ((Shape.Known) m.shape(Values.X).dim(1)).value();
    // ORT's kernel reads gamma and beta as float32 whatever the activation type.
    Value gamma = b.initializer("gamma", Tensor.ofFloats(new long[] {channels},
        ChannelsLast.perChannel(m.constant(Values.GAMMA), channels)));
    Value beta = b.initializer("beta", Tensor.ofFloats(new long[] {channels},
        ChannelsLast.perChannel(m.constant(Values.BETA), channels)));
    Attribute[] attributes = {
        Attribute.ofFloat("epsilon", m.node(Nodes.NORM).floatAttribute("epsilon", 1e-5f)),
        Attribute.ofInt("groups", groups),
        Attribute.ofInt("activation", m.hasNode(Nodes.SILU) ? 1 : 0),
        Attribute.ofInt("channels_last", channelsLast ? 1 : 0)};
    if (!channelsLast) {
      return b.op(Microsoft.GROUP_NORM, List.of(m.value(Values.X), gamma, beta), attributes);
    }
    Value normalized = b.op(Microsoft.GROUP_NORM, List.of(ChannelsLast.toNhwc(b, m.value(Values.X)), gamma, beta),
        attributes);
    return ChannelsLast.toNchw(b, normalized);
  }

  /** What the pattern binds values to. */
  private enum Values implements ValueKey { X, GROUP_SHAPE, ONES, ZEROS, ORIGINAL_SHAPE, GAMMA, BETA }
  private enum Nodes implements NodeKey { SILU, AFFINE, NORM }
}
