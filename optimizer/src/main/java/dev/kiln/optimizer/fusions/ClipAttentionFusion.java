package dev.kiln.optimizer.fusions;

import dev.kiln.graph.Attribute;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Shape;
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
import java.util.Set;

/**
 * CLIP's causal self-attention: {@code fold(Mul(Add(MatMul(x,Wq),bq), s)), fold(k)ᵀ → MatMul → Reshape[B,N,T,S] →
 * Add(causal mask) → Reshape[B·N,T,S] → Softmax → MatMul(fold(v)) → unfold}  ⇒
 * {@code Attention(x, [Wq|Wk|Wv], [bq|bk|bv], unidirectional=1, scale=s)}; likewise with 4-D heads
 * ({@code MatMul(q', kᵀ') + mask → Softmax → MatMul(v') → Transpose → Reshape}, see {@link AttentionPatterns#heads4d}).
 *
 * <p>The mask must be computed from shapes and constants only (the exporter's ConstantOfShape/Range/Less/Where
 * chain); a mask that reads input values is an attention mask, not the causal one, and the site is declined. And
 * it must be the causal mask: {@link CausalMaskProbe} computes it at two sets of sizes and checks its values.
 */
public final class ClipAttentionFusion implements Rule {
  @Override
  public String name() {
    return "clip-attention";
  }

  @Override
  public Pattern pattern(PatternBuilder p) {
    var operands = AttentionPatterns.foldedOperands(p);
    var scores = p.op(Onnx.MAT_MUL, operands.query(), operands.keyTransposed());
    var perHead = p.op(Onnx.RESHAPE, scores, p.any("perHeadShape")).as("perHead");
    var masked = p.op(Onnx.ADD, perHead, p.any("mask")).as("masked");
    var folded = p.op(Onnx.RESHAPE, masked, p.any("maskedShape")).as("maskedFold");
    // The 4-D form (heads never folded into the batch: transformers with SDPA, the tiny pipeline's CLIP) binds the
    // same names: "perHead" is the score MatMul itself.
    var fourD = AttentionPatterns.heads4d(p,
        (query, key) -> p.op(Onnx.ADD, p.op(Onnx.MAT_MUL, query, key).as("perHead"), p.any("mask")).as("masked"));
    return p.anyOf(AttentionPatterns.attend(p, folded, operands), fourD);
  }

  @Override
  public Check check(Match m) {
    boolean fourD = AttentionPatterns.isSdpa(m);
    Object headLayout = fourD ? AttentionPatterns.heads4dLayout(m) : AttentionPatterns.headLayout(m);
    if (headLayout instanceof Check failure) {
      return failure;
    }
    long[] layout = (long[]) headLayout;
    var perHead = m.shape(m.node("perHead").output());
    if (perHead == null || perHead.rank() != 4 || !perHead.dim(1).equals(Shape.known(layout[0]))) {
      return Check.fail("scores are not viewed per head [B,N,T,S] before the mask: " + perHead);
    }
    if (!dataIndependent(m.value("mask"))) {
      return Check.fail("mask depends on input values (not a causal mask)");
    }
    // unidirectional=1 replaces the mask: it must be the causal one, which computing it proves (an all-zero
    // constant mask fused as causal once gave a relative error of 1.58)
    String notCausal = CausalMaskProbe.disproof(m.value("mask"), m.node("perHead").output(), m.shapes());
    if (notCausal != null) {
      return Check.fail(notCausal);
    }
    Check projections = LinearProjection.selfAttention(LinearProjection.queryKeyValue(m, true));
    if (!projections.passed()) {
      return projections;
    }
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
    LinearProjection[] queryKeyValue = LinearProjection.queryKeyValue(m, true);
    return LinearProjection.packedAttention(b, queryKeyValue,
        Attribute.ofInt("num_heads", AttentionPatterns.headsOf(m)),
        Attribute.ofInt("unidirectional", 1),
        Attribute.ofFloat("scale", (float) queryKeyValue[0].scale()));
  }
}
