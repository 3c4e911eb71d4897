package dev.kiln.optimizer.fusions;

import dev.kiln.graph.Microsoft;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import dev.kiln.optimizer.engine.Builder;
import dev.kiln.optimizer.engine.Check;
import dev.kiln.optimizer.engine.Match;
import dev.kiln.optimizer.engine.NodeKey;
import dev.kiln.optimizer.engine.Pattern;
import dev.kiln.optimizer.engine.PatternBuilder;
import dev.kiln.optimizer.engine.Rule;
import dev.kiln.optimizer.engine.ValueKey;
import java.util.List;
import java.util.Set;

/**
 * GEGLU: {@code t = Add(X, b[D])}; {@code Mul(Slice(t, 0, D/2), Gelu(Slice(t, D/2, D)))} on the last axis  ⇒
 * {@code com.microsoft.BiasSplitGelu(X, b)}.
 *
 * <p>torch computes the slice bounds at run time ({@code Shape → Gather(-1) → Add(1) → Div(2) → Mul}); the
 * bounds are read through shape inference, so folded constants and unfolded chains are judged alike, and a
 * site whose bounds inference cannot decide is refused with that reason. Gelu may already be
 * {@code com.microsoft.Gelu} (the gelu rule runs first) or still the Erf form.
 *
 * <p>ORT's CUDA kernel only accepts D of 2560, 5120 or 10240 (SD 1.x/2.x/XL all have these); with
 * {@code cudaKernelSizesOnly} other sizes are refused, since the fused graph would fail at run time.
 */
public final class BiasSplitGeluFusion implements Rule {
  private static final Set<Long> CUDA_HIDDEN_SIZES = Set.of(2560L, 5120L, 10240L);
  private final boolean cudaKernelSizesOnly;

  private BiasSplitGeluFusion(boolean cudaKernelSizesOnly) {
    this.cudaKernelSizesOnly = cudaKernelSizesOnly;
  }

  /** Refuses the sizes ORT's CUDA kernel rejects (the deployed cuda profile). */
  public static BiasSplitGeluFusion cudaKernelSizesOnly() {
    return new BiasSplitGeluFusion(true);
  }

  /** Fuses any size (small test graphs, and kernels without the size limit). */
  public static BiasSplitGeluFusion anySize() {
    return new BiasSplitGeluFusion(false);
  }

  @Override
  public String name() {
    return "bias-split-gelu";
  }

  @Override
  public Pattern pattern(PatternBuilder p) {
    var sum = p.op(Onnx.ADD, p.input(Values.PROJECTED), p.constant(Values.BIAS)).mayEscape().as(Nodes.SUM);
    var left = p.op(Onnx.SLICE, sum, p.any(Values.LEFT_STARTS), p.any(Values.LEFT_ENDS), p.any(Values.LEFT_AXES))
        .withTrailingInputs().as(Nodes.LEFT);
    var right = p.op(Onnx.SLICE, sum, p.any(Values.RIGHT_STARTS), p.any(Values.RIGHT_ENDS), p.any(Values.RIGHT_AXES))
        .withTrailingInputs().as(Nodes.RIGHT);
    var scaled = p.anyOf(p.op(Onnx.DIV, right, p.scalar(Math.sqrt(2.0))), p.op(Onnx.MUL, right, p.scalar(Math.sqrt(0.5))));
    var onePlusErf = p.op(Onnx.ADD, p.op(Onnx.ERF, scaled), p.scalar(1.0));
    var gelu = p.anyOf(
        p.op(Microsoft.GELU, right),
        p.op(Onnx.MUL, p.op(Onnx.MUL, right, onePlusErf), p.scalar(0.5)),
        p.op(Onnx.MUL, p.op(Onnx.MUL, right, p.scalar(0.5)), onePlusErf));
    return p.op(Onnx.MUL, left, gelu);
  }

  @Override
  public Check check(Match m) {
    Tensor bias = m.constant(Values.BIAS);
    if (bias.dims().length != 1) {
      return Check.fail("bias of shape " + bias.shape() + " is not a vector [D]");
    }
    long hidden = bias.dims()[0];
    if (hidden % 2 != 0) {
      return Check.fail("hidden size " + hidden + " is odd");
    }
    Shape projected = m.shape(Values.PROJECTED);
    if (projected == null) {
      return Check.fail("shape of the projected input unknown");
    }
    if (projected.rank() != 3) {
      return Check.fail("input has rank " + projected.rank() + "; BiasSplitGelu takes [N, S, D]");
    }
    if (!(projected.dim(2) instanceof Shape.Known last) || last.value() != hidden) {
      return Check.fail("input's last dim " + projected.dim(2) + " is not the bias size " + hidden);
    }
    Check left = sliceCovers(m, m.node(Nodes.LEFT), Values.LEFT_STARTS, Values.LEFT_ENDS, Values.LEFT_AXES, 0,
        hidden / 2, hidden);
    if (!left.passed()) {
      return left;
    }
    Check right = sliceCovers(m, m.node(Nodes.RIGHT), Values.RIGHT_STARTS, Values.RIGHT_ENDS, Values.RIGHT_AXES,
        hidden / 2, hidden, hidden);
    if (!right.passed()) {
      return right;
    }
    if (cudaKernelSizesOnly && !CUDA_HIDDEN_SIZES.contains(hidden)) {
      return Check.fail("ORT's CUDA BiasSplitGelu kernel takes hidden size 2560, 5120 or 10240, not " + hidden);
    }
    return Check.ok();
  }

  /** The Slice takes [start, end) of the last axis of a rank-3 tensor, step 1 (an end past D counts as D). */
  private static Check sliceCovers(Match m, Node slice, ValueKey starts, ValueKey ends, ValueKey axes, long start,
      long end, long hidden) {
    long[] startValues = m.shapes().knownElements(m.value(starts));
    long[] endValues = m.shapes().knownElements(m.value(ends));
    long[] axisValues = m.shapes().knownElements(m.value(axes));
    if (startValues == null || endValues == null || axisValues == null) {
      return Check.fail("slice bounds of " + slice.name() + " unknown to shape inference");
    }
    if (slice.input(4) != null) {
      long[] steps = m.shapes().knownElements(slice.input(4));
      if (steps == null || steps.length != 1 || steps[0] != 1) {
        return Check.fail("slice " + slice.name() + " has a step other than 1");
      }
    }
    boolean lastAxis = axisValues.length == 1 && (axisValues[0] == -1 || axisValues[0] == 2);
    long actualEnd = endValues.length == 1 ? Math.min(endValues[0], hidden) : -1;
    if (!lastAxis || startValues.length != 1 || startValues[0] != start || actualEnd != end) {
      return Check.fail("slice " + slice.name() + " does not take [" + start + ", " + end + ") of the last axis");
    }
    return Check.ok();
  }

  @Override
  public Value rewrite(Match m, Builder b) {
    return b.op(Microsoft.BIAS_SPLIT_GELU, List.of(m.value(Values.PROJECTED), m.value(Values.BIAS)));
  }

  /** What the pattern binds values to. */
  private enum Values implements ValueKey { PROJECTED, BIAS, LEFT_STARTS, LEFT_ENDS, LEFT_AXES, RIGHT_STARTS, RIGHT_ENDS, RIGHT_AXES }
  private enum Nodes implements NodeKey { LEFT, RIGHT, SUM }
}
