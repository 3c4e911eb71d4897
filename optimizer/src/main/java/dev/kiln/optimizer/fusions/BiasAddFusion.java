package dev.kiln.optimizer.fusions;

import dev.kiln.graph.Microsoft;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import dev.kiln.optimizer.engine.Builder;
import dev.kiln.optimizer.engine.Check;
import dev.kiln.optimizer.engine.Constants;
import dev.kiln.optimizer.engine.Match;
import dev.kiln.optimizer.engine.NodeKey;
import dev.kiln.optimizer.engine.Pattern;
import dev.kiln.optimizer.engine.PatternBuilder;
import dev.kiln.optimizer.engine.Rule;
import dev.kiln.optimizer.engine.ValueKey;
import java.util.List;
import java.util.Set;

/**
 * {@code Add(Add(MatMul(…), bias[C]), skip[N, S, C])}  ⇒  {@code com.microsoft.BiasAdd(MatMul(…), bias, skip)}:
 * a linear layer's bias and the residual added in one kernel — in a UNet, the feed-forward output of every
 * transformer block (the attention outputs go to SkipLayerNormalization first, which the profile runs earlier).
 *
 * <p>ORT's CUDA kernel only accepts C of 320, 640 or 1280; with {@code cudaKernelSizesOnly} other sizes are
 * refused.
 */
public final class BiasAddFusion implements Rule {
  private static final Set<Long> CUDA_CHANNELS = Set.of(320L, 640L, 1280L);
  private final boolean cudaKernelSizesOnly;

  private BiasAddFusion(boolean cudaKernelSizesOnly) {
    this.cudaKernelSizesOnly = cudaKernelSizesOnly;
  }

  /** Refuses the sizes ORT's CUDA kernel rejects (the deployed cuda profile). */
  public static BiasAddFusion cudaKernelSizesOnly() {
    return new BiasAddFusion(true);
  }

  /** Fuses any size (small test graphs, and kernels without the size limit). */
  public static BiasAddFusion anySize() {
    return new BiasAddFusion(false);
  }

  @Override
  public String name() {
    return "bias-add";
  }

  @Override
  public Pattern pattern(PatternBuilder p) {
    var biased = p.op(Onnx.ADD, p.input(Values.X), p.constant(Values.BIAS)).as(Nodes.BIASED);
    return p.op(Onnx.ADD, biased, p.input(Values.SKIP));
  }

  @Override
  public Check check(Match m) {
    Node producer = m.value(Values.X).producer();
    if (producer == null || !producer.is(Onnx.MAT_MUL)) {
      return Check.fail("the biased input is not a MatMul output (not a linear layer)");
    }
    if (Constants.tensor(m.value(Values.SKIP)) != null) {
      return Check.fail("the skip is a constant");
    }
    Shape x = m.shape(Values.X);
    Shape skip = m.shape(Values.SKIP);
    if (x == null || skip == null) {
      return Check.fail("shape of the input or the skip unknown");
    }
    if (x.rank() != 3) {
      return Check.fail("input has rank " + x.rank() + "; BiasAdd takes [N, S, C]");
    }
    if (skip.rank() != 3) {
      return Check.fail("skip has rank " + skip.rank() + "; BiasAdd takes [N, S, C]");
    }
    if (!ResidualShapes.sameShape(x, skip)) {
      return Check.fail("skip shape " + skip + " is not provably the input's " + x);
    }
    Tensor bias = m.constant(Values.BIAS);
    if (bias.dims().length != 1 || !(x.dim(2) instanceof Shape.Known channels) || bias.dims()[0] != channels.value()) {
      return Check.fail("bias of shape " + bias.shape() + " is not [C] for input " + x);
    }
    if (cudaKernelSizesOnly && !CUDA_CHANNELS.contains(channels.value())) {
      return Check.fail("ORT's CUDA BiasAdd kernel takes 320, 640 or 1280 channels, not " + channels.value());
    }
    return Check.ok();
  }

  @Override
  public Value rewrite(Match m, Builder b) {
    return b.op(Microsoft.BIAS_ADD, List.of(m.value(Values.X), m.value(Values.BIAS), m.value(Values.SKIP)));
  }

  /** What the pattern binds values to. */
  private enum Values implements ValueKey { X, BIAS, SKIP }
  private enum Nodes implements NodeKey { BIASED }
}
