package dev.kiln.optimizer.fusions;

import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Shape;
import dev.kiln.optimizer.engine.Check;
import dev.kiln.optimizer.engine.Match;
import dev.kiln.optimizer.engine.Pattern;
import dev.kiln.optimizer.engine.PatternBuilder;
import java.util.Arrays;
import java.util.List;

/**
 * The pieces every torch-1 style attention export shares: heads folded into the batch
 * ({@code Reshape[B,S,N,H] → Transpose[0,2,1,3] → Reshape[B·N,S,H]}), the core
 * {@code Softmax(scores) → MatMul(·, v)}, and heads unfolded again
 * ({@code Reshape[B,N,S,H] → Transpose[0,2,1,3] → Reshape[B,S,N·H]}). Node names bound here use a prefix
 * per operand ("q", "k", "v") so one check can read them all.
 */
final class AttentionPatterns {
  private AttentionPatterns() {}

  /** The q, k, v every variant starts from, each folded per head; the key also transposed for the scores. */
  record Operands(Pattern.Op query, Pattern.Op keyTransposed, Pattern.Op value) {}

  /** Binds "q", "k", "v" (and their fold nodes) and "keyTransposed". */
  static Operands foldedOperands(PatternBuilder p) {
    var query = foldHeads(p, p.any("q"), "q");
    var key = foldHeads(p, p.any("k"), "k");
    var value = foldHeads(p, p.any("v"), "v");
    return new Operands(query, p.op(Onnx.TRANSPOSE, key).as("keyTransposed"), value);
  }

  /** {@code unfold(MatMul(Softmax(scores), v))}, binding "softmax": the end every variant shares. */
  static Pattern.Op attend(PatternBuilder p, Pattern scores, Operands operands) {
    var probabilities = p.op(Onnx.SOFTMAX, scores).as("softmax");
    return unfoldHeads(p, p.op(Onnx.MAT_MUL, probabilities, operands.value()));
  }

  /** {@code Reshape(Transpose(Reshape(<name>, ·), [0,2,1,3]), ·)} — [B,S,C] to [B·N,S,H]. */
  static Pattern.Op foldHeads(PatternBuilder p, Pattern projection, String prefix) {
    var split = p.op(Onnx.RESHAPE, projection, p.any(prefix + "SplitShape")).as(prefix + "Split");
    var transposed = p.op(Onnx.TRANSPOSE, split).as(prefix + "Transpose");
    return p.op(Onnx.RESHAPE, transposed, p.any(prefix + "FoldShape")).as(prefix + "Fold");
  }

  /** {@code Reshape(Transpose(Reshape(context, ·), [0,2,1,3]), ·)} — [B·N,S,H] back to [B,S,N·H]. */
  static Pattern.Op unfoldHeads(PatternBuilder p, Pattern context) {
    var split = p.op(Onnx.RESHAPE, context, p.any("outSplitShape")).as("outSplit");
    var transposed = p.op(Onnx.TRANSPOSE, split).as("outTranspose");
    return p.op(Onnx.RESHAPE, transposed, p.any("outMergeShape")).as("outMerge");
  }

  /** Checks one folded operand and returns its head count, or a failure. */
  static Object foldedHeads(Match m, String prefix) {
    Node transpose = m.node(prefix + "Transpose");
    if (!hasPerm(transpose, 0, 2, 1, 3)) {
      return Check.fail(prefix + ": head split is not transposed [0,2,1,3]");
    }
    Shape split = m.shape(m.node(prefix + "Split").output());
    if (split == null || split.rank() != 4) {
      return Check.fail(prefix + ": shape of the head split unknown (reshape target not inferable)");
    }
    if (!(split.dim(2) instanceof Shape.Known heads) || !(split.dim(3) instanceof Shape.Known headSize)) {
      return Check.fail(prefix + ": head count or head size unknown: " + split);
    }
    Shape folded = m.shape(m.node(prefix + "Fold").output());
    if (folded == null || folded.rank() != 3 || !folded.dim(2).equals(headSize)) {
      return Check.fail(prefix + ": folded heads not [B*N,S,H]: " + folded);
    }
    return new long[] {heads.value(), headSize.value()};
  }

  /**
   * Checks what {@link #foldedOperands} bound: q, k and v each [B,S,C] and folded into the same
   * {heads, headSize}, the key transposed [0,2,1]. Returns that {heads, headSize}, or the failure.
   */
  static Object headLayout(Match m) {
    long[] shape = null;
    for (String operand : List.of("q", "k", "v")) {
      Check rank = rank3(m, operand);
      if (!rank.passed()) {
        return rank;
      }
      Object heads = foldedHeads(m, operand);
      if (heads instanceof Check failure) {
        return failure;
      }
      long[] found = (long[]) heads;
      if (shape != null && !Arrays.equals(shape, found)) {
        return Check.fail(operand + ": " + found[0] + " heads of " + found[1] + " disagree with q's " + shape[0] + " of " + shape[1]);
      }
      shape = found;
    }
    if (!hasPerm(m.node("keyTransposed"), 0, 2, 1)) {
      return Check.fail("key is not transposed [0,2,1] before the score MatMul");
    }
    return shape;
  }

  /**
   * The check of the plain scaled variant ({@code Softmax(Mul(MatMul(q, kᵀ), scale))}, UNet and VAE): head layout,
   * a single constant "scale", softmax over the last axis, and an unfold that undoes the fold.
   */
  static Check scaledDotProduct(Match m) {
    Object layout = headLayout(m);
    if (layout instanceof Check failure) {
      return failure;
    }
    if (Double.isNaN(m.scalar("scale"))) {
      return Check.fail("attention scale is not a single constant");
    }
    return softmaxOnLastAxis(m).and(() -> unfolded(m, headsOf(m), headSizeOf(m)));
  }

  /** Head count of a checked match (from q's inferred head split). */
  static long headsOf(Match m) {
    return ((Shape.Known) m.shape(m.node("qSplit").output()).dim(2)).value();
  }

  static long headSizeOf(Match m) {
    return ((Shape.Known) m.shape(m.node("qSplit").output()).dim(3)).value();
  }

  static Check unfolded(Match m, long heads, long headSize) {
    if (!hasPerm(m.node("outTranspose"), 0, 2, 1, 3)) {
      return Check.fail("output: heads not transposed back [0,2,1,3]");
    }
    Shape split = m.shape(m.node("outSplit").output());
    Shape merged = m.shape(m.node("outMerge").output());
    if (split == null || split.rank() != 4 || merged == null || merged.rank() != 3) {
      return Check.fail("output: shape of the head merge unknown");
    }
    if (!split.dim(1).equals(Shape.known(heads)) || !split.dim(3).equals(Shape.known(headSize))
        || !merged.dim(2).equals(Shape.known(heads * headSize))) {
      return Check.fail("output: merge " + split + " -> " + merged + " does not undo " + heads + " heads of " + headSize);
    }
    return Check.ok();
  }

  static boolean hasPerm(Node transpose, long... perm) {
    return transpose.hasAttribute("perm") && Arrays.equals(transpose.attribute("perm").asLongs(), perm);
  }

  static Check softmaxOnLastAxis(Match m) {
    Node softmax = m.node("softmax");
    long axis = softmax.intAttribute("axis", m.model().opsetVersion("") >= 13 ? -1 : 1);
    Shape shape = m.shape(softmax.input(0));
    if (shape == null) {
      return Check.fail("softmax input shape unknown");
    }
    return Check.require(axis == -1 || axis == shape.rank() - 1, "softmax is not over the last axis (axis " + axis + ")");
  }

  /** Shape of a projection output; must be [B,S,C] for every attention op. */
  static Check rank3(Match m, String name) {
    Shape shape = m.shape(name);
    if (shape == null) {
      return Check.fail(name + " shape unknown");
    }
    return Check.require(shape.rank() == 3, name + " is not [batch, sequence, channels]: " + shape);
  }
}
