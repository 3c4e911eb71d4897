package dev.kiln.validator.lowering;

import dev.kiln.graph.Attribute;
import dev.kiln.graph.DataType;
import dev.kiln.graph.Microsoft;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.OpType;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Value;
import java.util.Arrays;
import java.util.List;

/**
 * com.microsoft.MultiHeadAttention ⇒ MatMul / Softmax / MatMul in standard ONNX, for targets without the contrib
 * operator (and as an independent cross-check of ORT's CPU kernel).
 *
 * <p>Spec: query [B, S, N·H], key [B, L, N·H], value [B, L, N·Hv] (or the packed forms, unpacked first); an
 * optional bias [N·H + N·H + N·Hv] is added to q, k and v; an optional attention_bias is added to the scaled
 * scores; per head, softmax(scale · q kᵀ) v with scale defaulting to 1/√H; output [B, S, N·Hv]. Masks, past
 * state and unidirectional attention are not decomposed: such a node is refused by name.
 */
final class AttentionDecomposition implements OpLowering {
  private static final int KEY_PADDING_MASK = 4;
  private static final int ATTENTION_BIAS = 5;

  @Override
  public OpType op() {
    return Microsoft.MULTI_HEAD_ATTENTION;
  }

  @Override
  public List<Value> lower(Node node, Emitter emitter) {
    if (node.intAttribute("unidirectional", 0) != 0) {
      throw emitter.failure("unidirectional attention is not decomposed");
    }
    for (int index = KEY_PADDING_MASK; index < node.inputCount(); index++) {
      if (index != ATTENTION_BIAS && node.input(index) != null) {
        throw emitter.failure("input " + index + " (mask or past state) is not decomposed");
      }
    }
    for (int index = 1; index < node.outputCount(); index++) {
      if (node.output(index) != null && node.output(index).consumerCount() > 0) {
        throw emitter.failure("output " + index + " (present state or scores) is used and is not decomposed");
      }
    }
    long heads = OpLowering.requiredInt(node, "num_heads", emitter);
    Value query = node.input(0);
    Value key = node.input(1);
    Value value = node.input(2);
    if (PackedAttentionLowering.isPackedQkv(node)) {
      List<Value> parts = PackedAttentionLowering.unpack(emitter, query, 3);
      query = parts.get(0);
      key = parts.get(1);
      value = parts.get(2);
    } else if (PackedAttentionLowering.isPackedKv(node)) {
      List<Value> parts = PackedAttentionLowering.unpack(emitter, key, 2);
      key = parts.get(0);
      value = parts.get(1);
    }
    long hidden = lastDimension(emitter, query, "query");
    if (hidden % heads != 0) {
      throw emitter.failure("hidden size " + hidden + " is not a multiple of " + heads + " heads");
    }
    DataType type = emitter.dataType(query);
    Value bias = node.input(3);
    if (bias != null) {
      long valueHidden = lastDimension(emitter, value, "value");
      List<Value> biases = emitter.split(bias, 0, hidden, hidden, valueHidden);
      query = emitter.op(Onnx.ADD, query, biases.get(0));
      key = emitter.op(Onnx.ADD, key, biases.get(1));
      value = emitter.op(Onnx.ADD, value, biases.get(2));
    }
    double scale = node.attribute("scale") != null ? node.floatAttribute("scale", 0f)
        : 1.0 / Math.sqrt((double) hidden / heads);

    Value q = emitter.transpose(emitter.reshape(query, 0, 0, heads, -1), 0, 2, 1, 3);
    Value kTransposed = emitter.transpose(emitter.reshape(key, 0, 0, heads, -1), 0, 2, 3, 1);
    Value v = emitter.transpose(emitter.reshape(value, 0, 0, heads, -1), 0, 2, 1, 3);
    DataType compute = Emitter.computeType(type);
    Value scores = emitter.op(Onnx.MUL, emitter.castTo(emitter.op(Onnx.MAT_MUL, q, kTransposed), compute),
        emitter.scalar("scale", compute, scale));
    if (node.input(ATTENTION_BIAS) != null) {
      scores = emitter.op(Onnx.ADD, scores, emitter.castTo(node.input(ATTENTION_BIAS), compute));
    }
    Value probabilities = emitter.castTo(emitter.op(Onnx.SOFTMAX, List.of(scores), Attribute.ofInt("axis", -1)),
        type);
    Value context = emitter.transpose(emitter.op(Onnx.MAT_MUL, probabilities, v), 0, 2, 1, 3);
    Value[] outputs = new Value[node.outputCount()];
    outputs[0] = emitter.reshape(context, 0, 0, -1);
    return Arrays.asList(outputs);
  }

  private static long lastDimension(Emitter emitter, Value value, String role) {
    Shape shape = emitter.shape(value);
    if (shape == null || shape.rank() != 3 || !(shape.dim(2) instanceof Shape.Known known)) {
      throw emitter.failure(role + " '" + value.name() + "' needs a known hidden size, has shape " + shape);
    }
    return known.value();
  }
}
