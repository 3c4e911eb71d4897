package dev.kiln.optimizer.fusions;

import dev.kiln.graph.Attribute;
import dev.kiln.graph.Microsoft;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import dev.kiln.optimizer.engine.Builder;
import dev.kiln.optimizer.engine.Check;
import dev.kiln.optimizer.engine.Constants;
import dev.kiln.optimizer.engine.Match;
import dev.kiln.optimizer.engine.Pattern;
import dev.kiln.optimizer.engine.PatternBuilder;
import dev.kiln.optimizer.engine.Rule;
import java.util.ArrayDeque;
import java.util.Collections;
import java.util.Deque;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;

/**
 * CLIP's causal self-attention: {@code fold(Mul(Add(MatMul(x,Wq),bq), s)), fold(k)ᵀ → MatMul → Reshape[B,N,T,S] →
 * Add(causal mask) → Reshape[B·N,T,S] → Softmax → MatMul(fold(v)) → unfold}  ⇒
 * {@code Attention(x, [Wq|Wk|Wv], [bq|bk|bv], unidirectional=1, scale=s)}.
 *
 * <p>The mask must be computed from shapes and constants only (the exporter's ConstantOfShape/Range/Less/Where
 * chain); a mask that reads input values is an attention mask, not the causal one, and the site is declined.
 */
public final class ClipAttentionFusion implements Rule {
  @Override
  public String name() {
    return "clip-attention";
  }

  @Override
  public Pattern pattern(PatternBuilder p) {
    var query = AttentionPatterns.foldHeads(p, p.any("q"), "q");
    var key = AttentionPatterns.foldHeads(p, p.any("k"), "k");
    var value = AttentionPatterns.foldHeads(p, p.any("v"), "v");
    var keyTransposed = p.op(Onnx.TRANSPOSE, key).as("keyTransposed");
    var scores = p.op(Onnx.MAT_MUL, query, keyTransposed);
    var perHead = p.op(Onnx.RESHAPE, scores, p.any("perHeadShape")).as("perHead");
    var masked = p.op(Onnx.ADD, perHead, p.any("mask")).as("masked");
    var folded = p.op(Onnx.RESHAPE, masked, p.any("maskedShape")).as("maskedFold");
    var probabilities = p.op(Onnx.SOFTMAX, folded).as("softmax");
    return AttentionPatterns.unfoldHeads(p, p.op(Onnx.MAT_MUL, probabilities, value));
  }

  @Override
  public Check check(Match m) {
    long[] shape = null;
    for (String operand : List.of("q", "k", "v")) {
      Check rank = AttentionPatterns.rank3(m, operand);
      if (!rank.passed()) {
        return rank;
      }
      Object heads = AttentionPatterns.foldedHeads(m, operand);
      if (heads instanceof Check failure) {
        return failure;
      }
      long[] found = (long[]) heads;
      if (shape != null && !java.util.Arrays.equals(shape, found)) {
        return Check.fail(operand + ": head layout disagrees with q's");
      }
      shape = found;
    }
    if (!AttentionPatterns.hasPerm(m.node("keyTransposed"), 0, 2, 1)) {
      return Check.fail("key is not transposed [0,2,1] before the score MatMul");
    }
    var perHead = m.shape(m.node("perHead").output());
    if (perHead == null || perHead.rank() != 4 || !perHead.dim(1).equals(dev.kiln.graph.Shape.known(shape[0]))) {
      return Check.fail("scores are not viewed per head [B,N,T,S] before the mask: " + perHead);
    }
    if (!dataIndependent(m.value("mask"))) {
      return Check.fail("mask depends on input values (not a causal mask)");
    }
    LinearProjection q = LinearProjection.of(m.value("q"), true);
    LinearProjection k = LinearProjection.of(m.value("k"), false);
    LinearProjection v = LinearProjection.of(m.value("v"), false);
    if (q == null || k == null || v == null) {
      return Check.fail("q/k/v are not constant linear projections");
    }
    if (q.input() != k.input() || q.input() != v.input()) {
      return Check.fail("q/k/v do not project the same input");
    }
    long[] layout = shape;
    return AttentionPatterns.softmaxOnLastAxis(m).and(() -> AttentionPatterns.unfolded(m, layout[0], layout[1]));
  }

  /** True when every path above {@code value} ends in constants or passes through a Shape node (values unread). */
  static boolean dataIndependent(Value value) {
    Set<Value> seen = Collections.newSetFromMap(new IdentityHashMap<>());
    Deque<Value> pending = new ArrayDeque<>();
    pending.push(value);
    while (!pending.isEmpty()) {
      Value current = pending.pop();
      if (current == null || !seen.add(current)) {
        continue;
      }
      if (Constants.tensor(current) != null) {
        continue;
      }
      Node producer = current.producer();
      if (producer == null) {
        return false;
      }
      if (producer.is(Onnx.SHAPE)) {
        continue;
      }
      for (Value input : producer.inputs()) {
        pending.push(input);
      }
    }
    return true;
  }

  @Override
  public Value rewrite(Match m, Builder b) {
    LinearProjection q = LinearProjection.of(m.value("q"), true);
    LinearProjection k = LinearProjection.of(m.value("k"), false);
    LinearProjection v = LinearProjection.of(m.value("v"), false);
    Tensor[] packed = LinearProjection.concatenate(q, k, v);
    Value weights = b.initializer("qkv_weight", packed[0]);
    Value bias = b.initializer("qkv_bias", packed[1]);
    return b.op(Microsoft.ATTENTION, List.of(q.input(), weights, bias),
        Attribute.ofInt("num_heads", UnetAttentionFusion.headsOf(m)),
        Attribute.ofInt("unidirectional", 1),
        Attribute.ofFloat("scale", (float) q.scale()));
  }
}

