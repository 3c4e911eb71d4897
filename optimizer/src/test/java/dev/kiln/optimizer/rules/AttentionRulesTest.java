package dev.kiln.optimizer.rules;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.graph.Attribute;
import dev.kiln.graph.Microsoft;
import dev.kiln.graph.Model;
import dev.kiln.graph.ModelReader;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import dev.kiln.optimizer.engine.DriverReport;
import dev.kiln.optimizer.fusions.ClipAttentionFusion;
import dev.kiln.optimizer.fusions.UnetAttentionFusion;
import dev.kiln.optimizer.fusions.VaeAttentionFusion;
import dev.kiln.validator.lowering.Lowering;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Torch-1 style attention sites at static shapes: batch 1, 6 queries, 2 heads of 4 (channels 8). */
class AttentionRulesTest {
  private static final Shape QUERIES = Shape.of(1, 6, 8);
  private static final Shape CONTEXT = Shape.of(1, 5, 8);

  private enum Kind { UNET, CLIP, VAE }

  private static Value fold(SmallGraph g, Value projection, long sequence) {
    Value split = g.op(Onnx.RESHAPE, projection, g.longs(1, sequence, 2, 4));
    Value heads = g.op(Onnx.TRANSPOSE, List.of(split), Attribute.ofInts("perm", 0, 2, 1, 3));
    return g.op(Onnx.RESHAPE, heads, g.longs(2, sequence, 4));
  }

  private static Value linear(SmallGraph g, Value input, String name, boolean bias) {
    Value product = g.op(Onnx.MAT_MUL, input, g.weights(name + ".weight", 8, 8));
    return bias ? g.op(Onnx.ADD, g.weights(name + ".bias", 8), product) : product;
  }

  /** One attention site; {@code cross} takes k and v from a context input; {@code mask} is CLIP's causal mask value. */
  private static SmallGraph site(Kind kind, boolean cross, boolean maskIsInput, float[] scale) {
    return site(kind, cross, maskIsInput ? null : causal(), scale);
  }

  /** transformers' causal mask at 6 tokens: the float minimum above the diagonal, 0 on and below it. */
  private static float[] causal() {
    float[] causal = new float[36];
    for (int row = 0; row < 6; row++) {
      for (int column = row + 1; column < 6; column++) {
        causal[row * 6 + column] = -3.4028235e38f;
      }
    }
    return causal;
  }

  /** As above; {@code constantMask} [1,1,6,6] is CLIP's mask, or null for a mask fed as a graph input. */
  private static SmallGraph site(Kind kind, boolean cross, float[] constantMask, float[] scale) {
    boolean maskIsInput = constantMask == null;
    SmallGraph g = new SmallGraph(17, kind == Kind.CLIP ? "/encoder/layers.0/self_attn/" : "/mid_block/attentions.0/attn1/");
    Value x = g.input("hidden_states", QUERIES);
    Value context = cross ? g.input("encoder_hidden_states", CONTEXT) : x;
    long keys = cross ? 5 : 6;
    boolean bias = kind != Kind.UNET;
    Value q = linear(g, x, "to_q", bias);
    if (kind == Kind.CLIP) {
      q = g.op(Onnx.MUL, q, g.scalar(0.5f));
    }
    Value k = linear(g, context, "to_k", bias);
    Value v = linear(g, context, "to_v", bias);
    Value keyTransposed = g.op(Onnx.TRANSPOSE, List.of(fold(g, k, keys)), Attribute.ofInts("perm", 0, 2, 1));
    Value product = g.op(Onnx.MAT_MUL, fold(g, q, 6), keyTransposed);
    Value scores;
    switch (kind) {
      case UNET -> scores = g.op(Onnx.MUL, product, scale.length == 1 ? g.scalar(scale[0])
          : g.graph.addInitializer("scale", Tensor.ofFloats(new long[] {1, 1, scale.length}, scale)));
      case VAE -> {
        Value empty = g.op(Onnx.CONSTANT_OF_SHAPE, List.of(g.longs(2, 6, 6)),
            Attribute.ofTensor("value", Tensor.ofFloats(new long[] {1}, 0f)));
        scores = g.op(Onnx.ADD, g.op(Onnx.MUL, empty, g.scalar(0f)), g.op(Onnx.MUL, product, g.scalar(scale[0])));
      }
      default -> {
        Value mask;
        if (maskIsInput) {
          mask = g.input("attention_mask", Shape.of(1, 1, 6, 6));
        } else {
          mask = g.graph.addInitializer("causal_mask", Tensor.ofFloats(new long[] {1, 1, 6, 6}, constantMask));
        }
        Value perHead = g.op(Onnx.RESHAPE, product, g.longs(1, 2, 6, 6));
        scores = g.op(Onnx.RESHAPE, g.op(Onnx.ADD, perHead, mask), g.longs(2, 6, 6));
      }
    }
    Value probabilities = g.op(Onnx.SOFTMAX, List.of(scores), Attribute.ofInt("axis", -1));
    Value attended = g.op(Onnx.MAT_MUL, probabilities, fold(g, v, keys));
    Value split = g.op(Onnx.RESHAPE, attended, g.longs(1, 2, 6, 4));
    Value merged = g.op(Onnx.RESHAPE, g.op(Onnx.TRANSPOSE, List.of(split), Attribute.ofInts("perm", 0, 2, 1, 3)), g.longs(1, 6, 8));
    g.output(linear(g, merged, "to_out.0", true), "out", QUERIES);
    return g;
  }

  private static List<String> ops(Model model) {
    return model.graph().nodes().stream().map(node -> node.opType().name()).toList();
  }

  @Test
  void unetSelfAttentionBecomesMultiHeadAttentionOnCpu() {
    SmallGraph g = site(Kind.UNET, false, false, new float[] {0.5f});
    Model before = RuleTestSupport.copy(g.model);
    String printed = RuleTestSupport.print(g.model);
    DriverReport report = RuleTestSupport.apply(g.model, UnetAttentionFusion.separateProjections());
    assertEquals(1, report.applied("unet-attention"));
    assertEquals(List.of("MatMul", "MatMul", "MatMul", "MultiHeadAttention", "MatMul", "Add"), ops(g.model));
    Node attention = g.graph.findNode("/mid_block/attentions.0/attn1/MultiHeadAttention");
    assertEquals(2, attention.intAttribute("num_heads", 0));
    assertEquals(0.5f, attention.floatAttribute("scale", 0));
    assertEquals(1L, g.model.opsetVersion("com.microsoft"));
    RuleTestSupport.assertGolden("unet-attention-cpu", printed, RuleTestSupport.print(g.model));
    assertTrue(RuleTestSupport.parity(before, g.model, Map.of()) <= 1e-5);
  }

  @Test
  void unetSelfAttentionPacksQkvForCuda() {
    SmallGraph g = site(Kind.UNET, false, false, new float[] {0.5f});
    Model before = RuleTestSupport.copy(g.model);
    String printed = RuleTestSupport.print(g.model);
    assertEquals(1, RuleTestSupport.apply(g.model, UnetAttentionFusion.packed()).applied("unet-attention"));
    Node attention = g.graph.findNode("/mid_block/attentions.0/attn1/MultiHeadAttention");
    assertNull(attention.input(1), "packed QKV: key and value omitted");
    RuleTestSupport.assertGolden("unet-attention-packed-qkv", printed, RuleTestSupport.print(g.model));
    assertTrue(loweredParity(before, g.model) <= 1e-5);
  }

  @Test
  void unetCrossAttentionPacksKvForCuda() {
    SmallGraph g = site(Kind.UNET, true, false, new float[] {0.5f});
    Model before = RuleTestSupport.copy(g.model);
    assertEquals(1, RuleTestSupport.apply(g.model, UnetAttentionFusion.packed()).applied("unet-attention"));
    Node attention = g.graph.findNode("/mid_block/attentions.0/attn1/MultiHeadAttention");
    assertTrue(attention.input(0).producer().is(Onnx.MAT_MUL), "query stays its own projection");
    assertTrue(attention.input(1).producer().is(Onnx.RESHAPE), "key is the packed [B,L,N,2,H] projection");
    assertNull(attention.input(2));
    assertTrue(loweredParity(before, g.model) <= 1e-5);
    Model cpu = RuleTestSupport.copy(before);
    assertEquals(1, RuleTestSupport.apply(cpu, UnetAttentionFusion.separateProjections()).applied("unet-attention"));
    assertTrue(RuleTestSupport.parity(before, cpu, Map.of()) <= 1e-5);
  }

  @Test
  void unetAttentionDeclinesAPerPositionScale() {
    SmallGraph g = site(Kind.UNET, false, false, new float[] {0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.25f});
    DriverReport report = RuleTestSupport.apply(g.model, UnetAttentionFusion.separateProjections());
    assertEquals(Map.of("attention scale is not a single constant", 1), report.stats("unet-attention").rejections());
  }

  @Test
  void clipCausalAttentionBecomesUnidirectionalAttention() {
    SmallGraph g = site(Kind.CLIP, false, false, new float[0]);
    Model before = RuleTestSupport.copy(g.model);
    String printed = RuleTestSupport.print(g.model);
    assertEquals(1, RuleTestSupport.apply(g.model, new ClipAttentionFusion()).applied("clip-attention"));
    assertEquals(List.of("Attention", "MatMul", "Add"), ops(g.model));
    Node attention = g.graph.nodes().get(0);
    assertEquals(1, attention.intAttribute("unidirectional", 0));
    assertEquals(0.5f, attention.floatAttribute("scale", 0));
    RuleTestSupport.assertGolden("clip-attention", printed, RuleTestSupport.print(g.model));
    assertTrue(RuleTestSupport.parity(before, g.model, Map.of()) <= 1e-5);
  }

  @Test
  void clipAttentionDeclinesAMaskThatComesFromInputs() {
    SmallGraph g = site(Kind.CLIP, false, true, new float[0]);
    DriverReport report = RuleTestSupport.apply(g.model, new ClipAttentionFusion());
    assertEquals(Map.of("mask depends on input values (not a causal mask)", 1), report.stats("clip-attention").rejections());
  }

  @Test
  void clipAttentionDeclinesAConstantMaskThatIsNotCausal() {
    // All zeros: plain bidirectional attention. Fused as unidirectional it gave a max relative error of 1.58.
    SmallGraph g = site(Kind.CLIP, false, new float[36], new float[0]);
    DriverReport report = RuleTestSupport.apply(g.model, new ClipAttentionFusion());
    assertEquals(0, report.applied("clip-attention"));
    assertEquals(Map.of("mask is not causal: 0 at query 0, key 1 (a causal mask is <= -1e4 above the diagonal)", 1),
        report.stats("clip-attention").rejections());
  }

  @Test
  void clipAttentionDeclinesACausalMaskShiftedByOne() {
    float[] shifted = new float[36];
    for (int row = 0; row < 6; row++) {
      for (int column = row; column < 6; column++) {
        shifted[row * 6 + column] = -3.4028235e38f;
      }
    }
    SmallGraph g = site(Kind.CLIP, false, shifted, new float[0]);
    DriverReport report = RuleTestSupport.apply(g.model, new ClipAttentionFusion());
    assertEquals(0, report.applied("clip-attention"));
    assertEquals(Map.of("mask is not causal: -3.4028234663852886E38 at query 0, key 0 (a causal mask is 0 on and below"
        + " the diagonal)", 1), report.stats("clip-attention").rejections());
  }

  /** CLIP attention with 4-D heads (never folded into the batch), the scores' mask added per head. */
  private static SmallGraph clip4d(float[] mask) {
    SmallGraph g = new SmallGraph(17, "/encoder/layers.0/self_attn/");
    Value x = g.input("hidden_states", QUERIES);
    Value q = g.op(Onnx.MUL, linear(g, x, "q_proj", true), g.scalar(0.5f));
    Value k = linear(g, x, "k_proj", true);
    Value v = linear(g, x, "v_proj", true);
    Value query = g.op(Onnx.TRANSPOSE, List.of(g.op(Onnx.RESHAPE, q, g.longs(1, 6, 2, 4))), Attribute.ofInts("perm", 0, 2, 1, 3));
    Value key = g.op(Onnx.TRANSPOSE, List.of(g.op(Onnx.RESHAPE, k, g.longs(1, 6, 2, 4))), Attribute.ofInts("perm", 0, 2, 3, 1));
    Value value = g.op(Onnx.TRANSPOSE, List.of(g.op(Onnx.RESHAPE, v, g.longs(1, 6, 2, 4))), Attribute.ofInts("perm", 0, 2, 1, 3));
    Value masked = g.op(Onnx.ADD, g.op(Onnx.MAT_MUL, query, key),
        g.graph.addInitializer("mask", Tensor.ofFloats(new long[] {1, 1, 6, 6}, mask)));
    Value probabilities = g.op(Onnx.SOFTMAX, List.of(masked), Attribute.ofInt("axis", -1));
    Value context = g.op(Onnx.TRANSPOSE, List.of(g.op(Onnx.MAT_MUL, probabilities, value)), Attribute.ofInts("perm", 0, 2, 1, 3));
    g.output(linear(g, g.op(Onnx.RESHAPE, context, g.longs(1, 6, 8)), "out_proj", true), "out", QUERIES);
    return g;
  }

  @Test
  void clipAttentionWithFourDimensionalHeadsFusesOnlyWithTheCausalMask() {
    SmallGraph causal = clip4d(causal());
    Model before = RuleTestSupport.copy(causal.model);
    assertEquals(1, RuleTestSupport.apply(causal.model, new ClipAttentionFusion()).applied("clip-attention"));
    assertEquals(List.of("Attention", "MatMul", "Add"), ops(causal.model));
    assertEquals(1, causal.graph.nodes().get(0).intAttribute("unidirectional", 0));
    assertTrue(RuleTestSupport.parity(before, causal.model, Map.of()) <= 1e-5);

    SmallGraph zeros = clip4d(new float[36]);
    DriverReport report = RuleTestSupport.apply(zeros.model, new ClipAttentionFusion());
    assertEquals(0, report.applied("clip-attention"));
    assertEquals(Map.of("mask is not causal: 0 at query 0, key 1 (a causal mask is <= -1e4 above the diagonal)", 1),
        report.stats("clip-attention").rejections());
  }

  @Test
  void vaeAttentionKeepsItsRealBiases() {
    SmallGraph g = site(Kind.VAE, false, false, new float[] {0.35355339f});
    Model before = RuleTestSupport.copy(g.model);
    String printed = RuleTestSupport.print(g.model);
    assertEquals(1, RuleTestSupport.apply(g.model, new VaeAttentionFusion()).applied("vae-attention"));
    Node attention = g.graph.nodes().get(0);
    assertTrue(attention.is(Microsoft.ATTENTION));
    float[] bias = attention.input(2).initializer().floats();
    float[] queryBias = before.graph().findValue("/mid_block/attentions.0/attn1/to_q.bias").initializer().floats();
    float[] valueBias = before.graph().findValue("/mid_block/attentions.0/attn1/to_v.bias").initializer().floats();
    assertEquals(queryBias[3], bias[3]);
    assertEquals(valueBias[5], bias[16 + 5]);
    RuleTestSupport.assertGolden("vae-attention", printed, RuleTestSupport.print(g.model));
    assertTrue(RuleTestSupport.parity(before, g.model, Map.of()) <= 1e-5);
  }

  @Test
  void vaeAttentionDeclinesCrossAttention() {
    SmallGraph g = site(Kind.VAE, true, false, new float[] {0.35355339f});
    DriverReport report = RuleTestSupport.apply(g.model, new VaeAttentionFusion());
    assertEquals(Map.of("q/k/v do not project the same input (not self-attention)", 1), report.stats("vae-attention").rejections());
  }

  /** Parity of a CUDA-profile graph through the lowering (packed MultiHeadAttention has no CPU kernel). */
  private static double loweredParity(Model before, Model after) {
    Model lowered = ModelReader.read(RuleTestSupport.write(after, "packed"));
    Lowering.forOrtCpu().lower(lowered);
    return RuleTestSupport.parity(before, lowered, Map.of());
  }
}
