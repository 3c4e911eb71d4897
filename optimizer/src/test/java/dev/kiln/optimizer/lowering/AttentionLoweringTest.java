package dev.kiln.optimizer.lowering;

import dev.kiln.validator.lowering.Lowering;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.graph.Attribute;
import dev.kiln.graph.Microsoft;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * MultiHeadAttention: the packed forms that ORT's CPU kernel refuses, unpacked for it; and the full standard-op
 * decomposition of every form. Both against the reference.
 */
class AttentionLoweringTest {

  @ParameterizedTest(name = "packed QKV B={0} S={1} N={2} H={3} standard={4}")
  @CsvSource({"2, 5, 2, 4, false", "1, 9, 3, 8, false", "2, 5, 2, 4, true", "1, 16, 4, 5, true"})
  void packedQkvMatchesReference(int batch, int sequence, int heads, int headSize, boolean standard) {
    Random random = new Random(batch * 1000 + sequence * 100 + heads * 10 + headSize);
    ReferenceOps.Tensor packed = SingleNodeModel.random(random, 1, 0, batch, sequence, heads, 3, headSize);
    ReferenceOps.Tensor expected = ReferenceOps.multiHeadAttention(ReferenceOps.unpack(packed, 0),
        ReferenceOps.unpack(packed, 1), ReferenceOps.unpack(packed, 2), null, heads, null);
    float[] actual = new SingleNodeModel().feed("qkv", packed)
        .node(Microsoft.MULTI_HEAD_ATTENTION, 1, Attribute.ofInt("num_heads", heads))
        .runLowered(standard ? Lowering.decomposingAttention() : Lowering.forOrtCpu()).get("output_0");
    double error = SingleNodeModel.maxAbsoluteError(expected.data(), actual);
    System.out.printf("LOWERING-ERROR MultiHeadAttention packed QKV %s %s: %.3g%n",
        SingleNodeModel.describe(packed.shape()), standard ? "standard ops" : "CPU kernel", error);
    assertTrue(error <= 1e-5, "max abs error " + error);
  }

  @ParameterizedTest(name = "packed KV B={0} S={1} L={2} N={3} H={4} standard={5}")
  @CsvSource({"2, 6, 7, 2, 4, false", "1, 12, 5, 4, 8, false", "2, 6, 7, 2, 4, true", "1, 3, 11, 1, 6, true"})
  void packedKvMatchesReference(int batch, int sequence, int keySequence, int heads, int headSize,
      boolean standard) {
    Random random = new Random(batch + sequence * 10 + keySequence * 100 + heads * 1000 + headSize);
    ReferenceOps.Tensor query = SingleNodeModel.random(random, 1, 0, batch, sequence, (long) heads * headSize);
    ReferenceOps.Tensor packed = SingleNodeModel.random(random, 1, 0, batch, keySequence, heads, 2, headSize);
    ReferenceOps.Tensor expected = ReferenceOps.multiHeadAttention(query, ReferenceOps.unpack(packed, 0),
        ReferenceOps.unpack(packed, 1), null, heads, null);
    float[] actual = new SingleNodeModel().feed("query", query).feed("kv", packed)
        .node(Microsoft.MULTI_HEAD_ATTENTION, 1, Attribute.ofInt("num_heads", heads))
        .runLowered(standard ? Lowering.decomposingAttention() : Lowering.forOrtCpu()).get("output_0");
    double error = SingleNodeModel.maxAbsoluteError(expected.data(), actual);
    System.out.printf("LOWERING-ERROR MultiHeadAttention packed KV q=%s kv=%s %s: %.3g%n",
        SingleNodeModel.describe(query.shape()), SingleNodeModel.describe(packed.shape()),
        standard ? "standard ops" : "CPU kernel", error);
    assertTrue(error <= 1e-5, "max abs error " + error);
  }

  @Test
  void unpackedWithBiasAndScaleDecomposesToStandardOps() {
    Random random = new Random(11);
    int heads = 2;
    int headSize = 3;
    int hidden = heads * headSize;
    ReferenceOps.Tensor query = SingleNodeModel.random(random, 1, 0, 2, 4, hidden);
    ReferenceOps.Tensor key = SingleNodeModel.random(random, 1, 0, 2, 5, hidden);
    ReferenceOps.Tensor value = SingleNodeModel.random(random, 1, 0, 2, 5, hidden);
    float[] bias = SingleNodeModel.randomVector(random, 3 * hidden, 0.5, 0);
    ReferenceOps.Tensor expected = ReferenceOps.multiHeadAttention(query, key, value, bias, heads, 0.3f);
    float[] actual = new SingleNodeModel().feed("query", query).feed("key", key).feed("value", value)
        .weight("bias", new long[] {3 * hidden}, bias)
        .node(Microsoft.MULTI_HEAD_ATTENTION, 1, Attribute.ofInt("num_heads", heads), Attribute.ofFloat("scale", 0.3f))
        .runLowered(Lowering.decomposingAttention()).get("output_0");
    double error = SingleNodeModel.maxAbsoluteError(expected.data(), actual);
    System.out.printf("LOWERING-ERROR MultiHeadAttention unpacked+bias+scale standard ops: %.3g%n", error);
    assertTrue(error <= 1e-5, "max abs error " + error);
  }

  @Test
  void ortCpuRefusesBothPackedForms() {
    Random random = new Random(5);
    AssertionError qkv = assertThrows(AssertionError.class, () -> new SingleNodeModel()
        .feed("qkv", SingleNodeModel.random(random, 1, 0, 1, 3, 2, 3, 4))
        .node(Microsoft.MULTI_HEAD_ATTENTION, 1, Attribute.ofInt("num_heads", 2)).runAsIs());
    assertTrue(qkv.getMessage().contains("Packed QKV of shape (B, L, N, 3, H) not implemented for CPU"),
        qkv.getMessage());
    AssertionError kv = assertThrows(AssertionError.class, () -> new SingleNodeModel()
        .feed("query", SingleNodeModel.random(random, 1, 0, 1, 3, 8))
        .feed("kv", SingleNodeModel.random(random, 1, 0, 1, 3, 2, 2, 4))
        .node(Microsoft.MULTI_HEAD_ATTENTION, 1, Attribute.ofInt("num_heads", 2)).runAsIs());
    assertTrue(kv.getMessage().contains("Packed KV not implemented for CPU"), kv.getMessage());
  }
}
