package dev.kiln.optimizer.fusions;

import dev.kiln.graph.Attribute;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Value;
import dev.kiln.optimizer.engine.Builder;
import dev.kiln.optimizer.engine.Check;
import dev.kiln.optimizer.engine.Match;
import dev.kiln.optimizer.engine.Pattern;
import dev.kiln.optimizer.engine.PatternBuilder;
import dev.kiln.optimizer.engine.Rule;

/**
 * The VAE mid-block's single-head attention (diffusers AttentionBlock, baddbmm export):
 * {@code fold(Add(MatMul(x,Wq),bq)) … → Add(Mul(empty, 0), Mul(MatMul(q, kᵀ), α)) → Softmax → MatMul(fold(v)) →
 * unfold}, or the same projections through torch 2's {@code scaled_dot_product_attention}
 * ({@link AttentionPatterns#sdpa}, diffusers' VAE Attention since 0.15)  ⇒  {@code Attention(x, [Wq|Wk|Wv], [bq|bk|bv])}. The real q/k/v biases go into the fused op's bias
 * input; ONNX Runtime's own fusion of this site replaces them by zeros.
 */
public final class VaeAttentionFusion implements Rule {
  @Override
  public String name() {
    return "vae-attention";
  }

  @Override
  public Pattern pattern(PatternBuilder p) {
    var operands = AttentionPatterns.foldedOperands(p);
    var product = p.op(Onnx.MUL, p.op(Onnx.MAT_MUL, operands.query(), operands.keyTransposed()), p.constant("scale"));
    // baddbmm(empty, q, kᵀ, beta=0, alpha=α) = beta·empty + α·(q·kᵀ); beta = 0 makes the first term vanish.
    var discarded = p.op(Onnx.MUL, p.any("empty"), p.scalar(0.0)).as("discarded");
    var scores = p.anyOf(p.op(Onnx.ADD, discarded, product), product);
    return p.anyOf(AttentionPatterns.attend(p, scores, operands), AttentionPatterns.sdpa(p));
  }

  @Override
  public Check check(Match m) {
    Check core = AttentionPatterns.scaledDotProduct(m);
    if (!core.passed()) {
      return core;
    }
    LinearProjection[] queryKeyValue = LinearProjection.queryKeyValue(m, false);
    Check projections = LinearProjection.selfAttention(queryKeyValue);
    if (!projections.passed()) {
      return projections;
    }
    int width = queryKeyValue[0].outputWidth();
    return Check.require(queryKeyValue[1].outputWidth() == width && queryKeyValue[2].outputWidth() == width,
        "q/k/v widths differ");
  }

  @Override
  public Value rewrite(Match m, Builder b) {
    return LinearProjection.packedAttention(b, LinearProjection.queryKeyValue(m, false),
        Attribute.ofInt("num_heads", AttentionPatterns.headsOf(m)),
        Attribute.ofFloat("scale", (float) AttentionPatterns.scale(m)));
  }
}
