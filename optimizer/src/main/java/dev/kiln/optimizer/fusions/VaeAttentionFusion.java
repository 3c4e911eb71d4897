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
import java.util.List;

/**
 * The VAE mid-block's single-head attention (diffusers AttentionBlock, baddbmm export):
 * {@code fold(Add(MatMul(x,Wq),bq)) … → Add(Mul(empty, 0), Mul(MatMul(q, kᵀ), α)) → Softmax → MatMul(fold(v)) →
 * unfold}  ⇒  {@code Attention(x, [Wq|Wk|Wv], [bq|bk|bv])}. The real q/k/v biases go into the fused op's bias
 * input; ONNX Runtime's own fusion of this site replaces them by zeros.
 */
public final class VaeAttentionFusion implements Rule {
  @Override
  public String name() {
    return "vae-attention";
  }

  @Override
  public Pattern pattern(PatternBuilder p) {
    var query = AttentionPatterns.foldHeads(p, p.any("q"), "q");
    var key = AttentionPatterns.foldHeads(p, p.any("k"), "k");
    var value = AttentionPatterns.foldHeads(p, p.any("v"), "v");
    var keyTransposed = p.op(Onnx.TRANSPOSE, key).as("keyTransposed");
    var product = p.op(Onnx.MUL, p.op(Onnx.MAT_MUL, query, keyTransposed), p.constant("scale"));
    // baddbmm(empty, q, kᵀ, beta=0, alpha=α) = beta·empty + α·(q·kᵀ); beta = 0 makes the first term vanish.
    var discarded = p.op(Onnx.MUL, p.any("empty"), p.scalar(0.0)).as("discarded");
    var scores = p.anyOf(p.op(Onnx.ADD, discarded, product), product);
    var probabilities = p.op(Onnx.SOFTMAX, scores).as("softmax");
    return AttentionPatterns.unfoldHeads(p, p.op(Onnx.MAT_MUL, probabilities, value));
  }

  @Override
  public Check check(Match m) {
    Check core = UnetAttentionFusion.checkCore(m);
    if (!core.passed()) {
      return core;
    }
    LinearProjection q = LinearProjection.of(m.value("q"), false);
    LinearProjection k = LinearProjection.of(m.value("k"), false);
    LinearProjection v = LinearProjection.of(m.value("v"), false);
    if (q == null || k == null || v == null) {
      return Check.fail("q/k/v are not constant linear projections");
    }
    if (q.input() != k.input() || q.input() != v.input()) {
      return Check.fail("q/k/v do not project the same input (not self-attention)");
    }
    return Check.require(q.outputWidth() == k.outputWidth() && k.outputWidth() == v.outputWidth(),
        "q/k/v widths differ");
  }

  @Override
  public Value rewrite(Match m, Builder b) {
    LinearProjection q = LinearProjection.of(m.value("q"), false);
    LinearProjection k = LinearProjection.of(m.value("k"), false);
    LinearProjection v = LinearProjection.of(m.value("v"), false);
    Tensor[] packed = LinearProjection.concatenate(q, k, v);
    Value weights = b.initializer("qkv_weight", packed[0]);
    Value bias = b.initializer("qkv_bias", packed[1]);
    return b.op(Microsoft.ATTENTION, List.of(q.input(), weights, bias),
        Attribute.ofInt("num_heads", UnetAttentionFusion.headsOf(m)),
        Attribute.ofFloat("scale", (float) m.scalar("scale")));
  }

}
