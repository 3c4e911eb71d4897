package dev.kiln.optimizer.fusions;

import dev.kiln.graph.Attribute;
import dev.kiln.graph.DataType;
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
import java.util.Arrays;
import java.util.List;

/**
 * UNet attention, torch-1 style (SD 1.x and SD 2.x head layouts alike — the head count is read from the
 * inferred head split, never assumed):
 * {@code fold(q), fold(k)ᵀ → MatMul → Mul(scale) → Softmax → MatMul(fold(v)) → unfold}, or torch 2's
 * {@code scaled_dot_product_attention} on 4-D heads with q and kᵀ each scaled ({@link AttentionPatterns#sdpa})  ⇒
 * {@code MultiHeadAttention(q, k, v)}; with packing (CUDA), self-attention becomes one MatMul against
 * packed weights feeding QKV as [B,S,N,3,H], cross-attention packed KV as [B,L,N,2,H].
 */
public final class UnetAttentionFusion implements Rule {
  private final boolean pack;

  /** @param pack emit packed QKV / KV (CUDA); CPU's MultiHeadAttention kernel takes separate q, k, v only. */
  private UnetAttentionFusion(boolean pack) {
    this.pack = pack;
  }

  /** Self-attention as one MatMul into packed QKV, cross-attention into packed KV (CUDA). */
  public static UnetAttentionFusion packed() {
    return new UnetAttentionFusion(true);
  }

  /** Separate q, k, v inputs: what ORT's CPU MultiHeadAttention kernel takes. */
  public static UnetAttentionFusion separateProjections() {
    return new UnetAttentionFusion(false);
  }

  @Override
  public String name() {
    return "unet-attention";
  }

  @Override
  public Pattern pattern(PatternBuilder p) {
    var operands = AttentionPatterns.foldedOperands(p);
    var scores = p.op(Onnx.MUL, p.op(Onnx.MAT_MUL, operands.query(), operands.keyTransposed()), p.constant("scale"));
    return p.anyOf(AttentionPatterns.attend(p, scores, operands), AttentionPatterns.sdpa(p));
  }

  @Override
  public Check check(Match m) {
    return AttentionPatterns.scaledDotProduct(m);
  }

  @Override
  public Value rewrite(Match m, Builder b) {
    long heads = AttentionPatterns.headsOf(m);
    long headSize = AttentionPatterns.headSizeOf(m);
    Attribute[] attributes = {Attribute.ofInt("num_heads", heads), Attribute.ofFloat("scale", (float) AttentionPatterns.scale(m))};
    Value q = m.value("q");
    Value k = m.value("k");
    Value v = m.value("v");
    if (pack) {
      Projection queryProjection = Projection.of(q);
      Projection keyProjection = Projection.of(k);
      Projection valueProjection = Projection.of(v);
      if (queryProjection != null && keyProjection != null && valueProjection != null
          && keyProjection.input() == valueProjection.input()) {
        if (queryProjection.input() == keyProjection.input()) {
          Value packed = packedProjection(b, queryProjection.input(), List.of(queryProjection, keyProjection, valueProjection),
              heads, headSize, "qkv");
          return b.op(Microsoft.MULTI_HEAD_ATTENTION, Arrays.asList(packed, null, null), attributes);
        }
        Value packed = packedProjection(b, keyProjection.input(), List.of(keyProjection, valueProjection), heads, headSize, "kv");
        return b.op(Microsoft.MULTI_HEAD_ATTENTION, Arrays.asList(q, packed, null), attributes);
      }
    }
    return b.op(Microsoft.MULTI_HEAD_ATTENTION, List.of(q, k, v), attributes);
  }

  /** A bias-free linear projection MatMul(input, W[C, N·H]) with constant fp32 weights. */
  record Projection(Value input, Tensor weights) {
    static Projection of(Value value) {
      Node producer = value.producer();
      if (producer == null || !producer.is(Onnx.MAT_MUL)) {
        return null;
      }
      Tensor weights = Constants.tensor(producer.input(1));
      if (weights == null || weights.dims().length != 2 || weights.dataType() != DataType.FLOAT) {
        return null;
      }
      return new Projection(producer.input(0), weights);
    }
  }

  /**
   * One MatMul against weights interleaved per head ([C, N, parts, H]), reshaped to [B, S, N, parts, H]. The packed
   * tensor is computed while the writer streams it, a block of rows at a time, so a full-size UNet never holds a
   * packed weight whole, nor all of them.
   */
  private static Value packedProjection(Builder b, Value input, List<Projection> parts, long heads, long headSize, String hint) {
    Tensor packedWeights = packedWeights(parts.stream().map(Projection::weights).toList(), heads, headSize);
    Value weights = b.initializer(hint + "_weight", packedWeights);
    Value projected = b.op(Onnx.MAT_MUL, List.of(input, weights));
    Value shape = b.longs(hint + "_shape", 0, 0, heads, parts.size(), headSize);
    return b.op(Onnx.RESHAPE, List.of(projected, shape));
  }

  /** The [C, N·parts·H] weight that interleaves the parts' [C, N·H] weights per head, streamed in blocks of rows. */
  static Tensor packedWeights(List<Tensor> sources, long heads, long headSize) {
    int inputChannels = (int) sources.get(0).dims()[0];
    int count = sources.size();
    int width = (int) (heads * headSize);
    int rowBytes = width * 4;
    int headBytes = (int) headSize * 4;
    int rowsPerBlock = Math.max(1, StreamedWeights.BLOCK_BYTES / (rowBytes * count));
    return StreamedWeights.of(DataType.FLOAT, new long[] {inputChannels, (long) width * count}, channel -> {
      List<StreamedWeights.Source> readers = new java.util.ArrayList<>();
      try {
        for (Tensor source : sources) {
          readers.add(new StreamedWeights.Source(source));
        }
        for (int first = 0; first < inputChannels; first += rowsPerBlock) {
          int rows = Math.min(rowsPerBlock, inputChannels - first);
          java.nio.ByteBuffer[] blocks = new java.nio.ByteBuffer[count];
          for (int part = 0; part < count; part++) {
            blocks[part] = readers.get(part).read((long) first * rowBytes, StreamedWeights.scratch(part, rows * rowBytes));
          }
          java.nio.ByteBuffer packed = StreamedWeights.scratch(count, rows * rowBytes * count);
          // Row r of the packed weight is, per head, that head's columns of each part in turn.
          int to = 0;
          for (int row = 0; row < rows; row++) {
            for (int head = 0; head < heads; head++) {
              for (int part = 0; part < count; part++, to += headBytes) {
                packed.put(to, blocks[part], row * rowBytes + head * headBytes, headBytes);
              }
            }
          }
          packed.limit(to);
          while (packed.hasRemaining()) {
            channel.write(packed);
          }
        }
      } finally {
        for (StreamedWeights.Source reader : readers) {
          reader.close();
        }
      }
    });
  }
}
