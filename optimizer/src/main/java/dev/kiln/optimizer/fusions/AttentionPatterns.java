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
import java.util.function.BiFunction;
import java.util.function.Function;

/**
 * The pieces every torch-1 style attention export shares: heads folded into the batch
 * ({@code Reshape[B,S,N,H] → Transpose[0,2,1,3] → Reshape[B·N,S,H]}; the key either transposed after folding or
 * folded straight to [B·N,H,S] through {@code Transpose[0,2,3,1]}), the core {@code Softmax(scores) → MatMul(·, v)},
 * and heads unfolded again ({@code Reshape[B,N,S,H] → Transpose[0,2,1,3] → Reshape[B,S,N·H]}). And torch 2's
 * {@code scaled_dot_product_attention} on 4-D heads ({@link #sdpa}). Node names bound here use a prefix per operand
 * ("q", "k", "v") so one check can read them all.
 */
final class AttentionPatterns {
  private AttentionPatterns() {}

  /** The q, k, v every variant starts from, each folded per head; the key also transposed for the scores. */
  record Operands(Pattern.Op query, Pattern keyTransposed, Pattern.Op value) {}

  /**
   * Binds "q", "k", "v" (and their fold nodes); the key is either folded then transposed ("keyTransposed", the
   * diffusers form) or folded transposed, {@code Reshape(Transpose[0,2,3,1](Reshape(k)))} to [B·N,H,S].
   */
  static Operands foldedOperands(PatternBuilder p) {
    var query = foldHeads(p, p.any("q"), "q");
    var key = foldHeads(p, p.any("k"), "k");
    var value = foldHeads(p, p.any("v"), "v");
    var keyFoldedTransposed = foldHeads(p, p.any("k"), "k");
    return new Operands(query, p.anyOf(p.op(Onnx.TRANSPOSE, key).as("keyTransposed"), keyFoldedTransposed), value);
  }

  /**
   * torch 2's {@code scaled_dot_product_attention} as its ONNX symbolic exports it, heads 4-D and never folded:
   * {@code q' = Transpose[0,2,1,3](Reshape(q)), kᵀ' = Transpose[0,2,3,1](Reshape(k))} (or [0,2,1,3] then [0,1,3,2]
   * when the exporter did not merge them), {@code MatMul(Mul(q', √s), Mul(kᵀ', √s)) → Softmax → MatMul(v') →
   * Transpose[0,2,1,3] → Reshape[B,S,N·H]}; the scale may also multiply the scores instead. Binds "q", "k", "v",
   * "qSplit"/"qTranspose" (and k's, v's), "kSwap" when k has two transposes, "qScale"/"kScale" or "scale",
   * "softmax", "context", "outTranspose", "outMerge". The scales are constants once
   * {@code ConstantFolding} has folded the graph's {@code Shape → Slice → Cast → Sqrt → Div → Sqrt}.
   */
  static Pattern.Op sdpa(PatternBuilder p) {
    return heads4d(p, (query, key) -> p.anyOf(
        p.op(Onnx.MAT_MUL, p.op(Onnx.MUL, query, p.constant("qScale")), p.op(Onnx.MUL, key, p.constant("kScale"))),
        p.op(Onnx.MUL, p.op(Onnx.MAT_MUL, query, key), p.constant("scale"))));
  }

  /**
   * The 4-D head layout torch 2's SDPA and 4-D CLIP attention share: q', kᵀ', v' split per head (never folded into
   * the batch), {@code scores} made from q' and kᵀ', then {@code Softmax → MatMul(v') → Transpose → Reshape}.
   */
  static Pattern.Op heads4d(PatternBuilder p, BiFunction<Pattern.Op, Pattern, Pattern> scores) {
    var query = splitHeads(p, "q");
    var key = p.anyOf(splitHeads(p, "k"), p.op(Onnx.TRANSPOSE, splitHeads(p, "k")).as("kSwap"));
    var value = splitHeads(p, "v");
    var probabilities = p.op(Onnx.SOFTMAX, scores.apply(query, key)).as("softmax");
    var context = p.op(Onnx.MAT_MUL, probabilities, value).as("context");
    return p.op(Onnx.RESHAPE, p.op(Onnx.TRANSPOSE, context).as("outTranspose"), p.any("outMergeShape")).as("outMerge");
  }

  /** {@code Transpose(Reshape(<prefix>, ·))}: [B,S,C] viewed [B,S,N,H], then transposed (checked later). */
  private static Pattern.Op splitHeads(PatternBuilder p, String prefix) {
    var split = p.op(Onnx.RESHAPE, p.any(prefix), p.any(prefix + "SplitShape")).as(prefix + "Split");
    return p.op(Onnx.TRANSPOSE, split).as(prefix + "Transpose");
  }

  /** Whether the match is the 4-D {@link #sdpa} form (nothing folded into the batch). */
  static boolean isSdpa(Match m) {
    return !m.hasNode("qFold");
  }

  /** The softmax scale of a checked match: one constant, or the product of q's and k's (torch 2 scales both). */
  static double scale(Match m) {
    return m.hasValue("qScale") ? m.scalar("qScale") * m.scalar("kScale") : m.scalar("scale");
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
    // A key folded straight to [B·N,H,S] (Transpose[0,2,3,1]) needs no transpose of its own before the scores.
    boolean keyFoldedTransposed = prefix.equals("k") && !m.hasNode("keyTransposed");
    if (keyFoldedTransposed ? !hasPerm(transpose, 0, 2, 3, 1) : !hasPerm(transpose, 0, 2, 1, 3)) {
      return Check.fail(prefix + ": head split is not transposed " + (keyFoldedTransposed ? "[0,2,3,1]" : "[0,2,1,3]"));
    }
    Shape split = m.shape(m.node(prefix + "Split").output());
    if (split == null || split.rank() != 4) {
      return Check.fail(prefix + ": shape of the head split unknown (reshape target not inferable)");
    }
    if (!(split.dim(2) instanceof Shape.Known heads) || !(split.dim(3) instanceof Shape.Known headSize)) {
      return Check.fail(prefix + ": head count or head size unknown: " + split);
    }
    Shape folded = m.shape(m.node(prefix + "Fold").output());
    if (folded == null || folded.rank() != 3 || !folded.dim(keyFoldedTransposed ? 1 : 2).equals(headSize)) {
      return Check.fail(prefix + ": folded heads not " + (keyFoldedTransposed ? "[B*N,H,S]" : "[B*N,S,H]") + ": " + folded);
    }
    return new long[] {heads.value(), headSize.value()};
  }

  /** Checks one 4-D split operand of the {@link #sdpa} form; returns {heads, headSize} or a failure. */
  static Object splitHeads(Match m, String prefix) {
    Check rank = rank3(m, prefix);
    if (!rank.passed()) {
      return rank;
    }
    Node transpose = m.node(prefix + "Transpose");
    boolean swapped = prefix.equals("k") && m.hasNode("kSwap");
    boolean transposed = prefix.equals("k") && !swapped ? hasPerm(transpose, 0, 2, 3, 1) : hasPerm(transpose, 0, 2, 1, 3);
    if (!transposed || (swapped && !hasPerm(m.node("kSwap"), 0, 1, 3, 2))) {
      return Check.fail(prefix + ": heads are not transposed to " + (prefix.equals("k") ? "[B,N,H,S]" : "[B,N,S,H]"));
    }
    Shape split = m.shape(m.node(prefix + "Split").output());
    if (split == null || split.rank() != 4) {
      return Check.fail(prefix + ": shape of the head split unknown (reshape target not inferable)");
    }
    if (!(split.dim(2) instanceof Shape.Known heads) || !(split.dim(3) instanceof Shape.Known headSize)) {
      return Check.fail(prefix + ": head count or head size unknown: " + split);
    }
    return new long[] {heads.value(), headSize.value()};
  }

  /**
   * The whole check of the {@link #sdpa} form: q, k, v [B,S,C] split into the same {heads, headSize}, constant
   * scale(s), softmax over the last axis, and the merge back to [B,S,N·H].
   */
  static Check sdpaLayout(Match m) {
    Object layout = heads4dLayout(m);
    if (layout instanceof Check failure) {
      return failure;
    }
    if (Double.isNaN(scale(m))) {
      return Check.fail("attention scale is not a single constant (q and k scales, or one on the scores)");
    }
    long[] shape = (long[]) layout;
    return softmaxOnLastAxis(m).and(() -> unfolded(m, shape[0], shape[1]));
  }

  /** q, k, v of the {@link #heads4d} form split into one {heads, headSize}; returns it or the failure. */
  static Object heads4dLayout(Match m) {
    return sameLayout(m, operand -> splitHeads(m, operand));
  }

  /** {@code perOperand} for q, k and v: each {heads, headSize} or a failure; they must agree. */
  private static Object sameLayout(Match m, Function<String, Object> perOperand) {
    long[] shape = null;
    for (String operand : List.of("q", "k", "v")) {
      Object heads = perOperand.apply(operand);
      if (heads instanceof Check failure) {
        return failure;
      }
      long[] found = (long[]) heads;
      if (shape != null && !Arrays.equals(shape, found)) {
        return Check.fail(operand + ": " + found[0] + " heads of " + found[1] + " disagree with q's " + shape[0] + " of " + shape[1]);
      }
      shape = found;
    }
    return shape;
  }

  /**
   * Checks what {@link #foldedOperands} bound: q, k and v each [B,S,C] and folded into the same
   * {heads, headSize}, the key transposed [0,2,1]. Returns that {heads, headSize}, or the failure.
   */
  static Object headLayout(Match m) {
    Object shape = sameLayout(m, operand -> {
      Check rank = rank3(m, operand);
      return rank.passed() ? foldedHeads(m, operand) : rank;
    });
    if (shape instanceof Check) {
      return shape;
    }
    if (m.hasNode("keyTransposed") && !hasPerm(m.node("keyTransposed"), 0, 2, 1)) {
      return Check.fail("key is not transposed [0,2,1] before the score MatMul");
    }
    return shape;
  }

  /**
   * The check of the plain scaled variant ({@code Softmax(Mul(MatMul(q, kᵀ), scale))}, UNet and VAE): head layout,
   * a single constant "scale", softmax over the last axis, and an unfold that undoes the fold; or, for the
   * {@link #sdpa} form, {@link #sdpaLayout}.
   */
  static Check scaledDotProduct(Match m) {
    if (isSdpa(m)) {
      return sdpaLayout(m);
    }
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

  /**
   * The end: context [B,N,S,H] (the torch-1 form's per-head view "outSplit", the 4-D form's "context" itself)
   * transposed back and merged to [B,S,N·H].
   */
  static Check unfolded(Match m, long heads, long headSize) {
    if (!hasPerm(m.node("outTranspose"), 0, 2, 1, 3)) {
      return Check.fail("output: heads not transposed back [0,2,1,3]");
    }
    Shape split = m.shape(m.node(m.hasNode("outSplit") ? "outSplit" : "context").output());
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
