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
import java.util.List;

/**
 * A linear layer as torch exports it on 3-D input: {@code MatMul(input, W[in, out])} optionally followed by
 * {@code Add(bias[out])} (either operand order), optionally followed by {@code Mul(scalar)} (CLIP's pre-scaled
 * query). Read off the graph by walking producers; weights must be constant fp32.
 */
record LinearProjection(Value input, Tensor weights, Tensor bias, double scale, Node matMul) {

  static LinearProjection of(Value value, boolean allowScale) {
    double scale = 1.0;
    Value current = value;
    Node producer = current.producer();
    if (allowScale && producer != null && producer.is(Onnx.MUL)) {
      for (int side = 0; side < 2; side++) {
        double factor = Constants.scalar(Constants.tensor(producer.input(side)));
        if (!Double.isNaN(factor)) {
          scale = factor;
          current = producer.input(1 - side);
          producer = current.producer();
          break;
        }
      }
    }
    Tensor bias = null;
    if (producer != null && producer.is(Onnx.ADD)) {
      for (int side = 0; side < 2; side++) {
        Tensor candidate = Constants.tensor(producer.input(side));
        if (candidate != null && candidate.dims().length == 1 && candidate.dataType() == DataType.FLOAT) {
          bias = candidate;
          current = producer.input(1 - side);
          producer = current.producer();
          break;
        }
      }
    }
    if (producer == null || !producer.is(Onnx.MAT_MUL)) {
      return null;
    }
    Tensor weights = Constants.tensor(producer.input(1));
    if (weights == null || weights.dims().length != 2 || weights.dataType() != DataType.FLOAT) {
      return null;
    }
    if (bias != null && bias.dims()[0] != weights.dims()[1]) {
      return null;
    }
    return new LinearProjection(producer.input(0), weights, bias, scale, producer);
  }

  /** The bound "q", "k", "v" as projections (q may carry a scale when {@code scaledQuery}); null if any is not one. */
  static LinearProjection[] queryKeyValue(Match m, boolean scaledQuery) {
    LinearProjection q = of(m.value("q"), scaledQuery);
    LinearProjection k = of(m.value("k"), false);
    LinearProjection v = of(m.value("v"), false);
    return q == null || k == null || v == null ? null : new LinearProjection[] {q, k, v};
  }

  /** Whether {@link #queryKeyValue} found three constant projections of one input, as packed Attention needs. */
  static Check selfAttention(LinearProjection[] queryKeyValue) {
    if (queryKeyValue == null) {
      return Check.fail("q/k/v are not constant linear projections");
    }
    Value input = queryKeyValue[0].input();
    return Check.require(queryKeyValue[1].input() == input && queryKeyValue[2].input() == input,
        "q/k/v do not project the same input (not self-attention)");
  }

  /** {@code com.microsoft.Attention(x, [Wq|Wk|Wv], [bq|bk|bv])} over checked {@link #selfAttention} projections. */
  static Value packedAttention(Builder b, LinearProjection[] queryKeyValue, Attribute... attributes) {
    Tensor[] packed = concatenate(queryKeyValue);
    Value weights = b.initializer("qkv_weight", packed[0]);
    Value bias = b.initializer("qkv_bias", packed[1]);
    return b.op(Microsoft.ATTENTION, List.of(queryKeyValue[0].input(), weights, bias), attributes);
  }

  int inputWidth() {
    return (int) weights.dims()[0];
  }

  int outputWidth() {
    return (int) weights.dims()[1];
  }

  float[] biasValues() {
    return bias == null ? new float[outputWidth()] : bias.floats();
  }

  /** Concatenates projections of one input column-wise into [in, Σout] weights and [Σout] bias (Attention's QKV layout). */
  static Tensor[] concatenate(LinearProjection... parts) {
    int rows = parts[0].inputWidth();
    int total = 0;
    for (LinearProjection part : parts) {
      total += part.outputWidth();
    }
    float[] weights = new float[rows * total];
    float[] bias = new float[total];
    int offset = 0;
    for (LinearProjection part : parts) {
      int width = part.outputWidth();
      float[] values = part.weights().floats();
      for (int row = 0; row < rows; row++) {
        System.arraycopy(values, row * width, weights, row * total + offset, width);
      }
      System.arraycopy(part.biasValues(), 0, bias, offset, width);
      offset += width;
    }
    return new Tensor[] {Tensor.ofFloats(new long[] {rows, total}, weights), Tensor.ofFloats(new long[] {total}, bias)};
  }
}
