package dev.kiln.validator.lowering;

import dev.kiln.graph.Attribute;
import dev.kiln.graph.Microsoft;
import dev.kiln.graph.Node;
import dev.kiln.graph.OpType;
import dev.kiln.graph.Value;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * com.microsoft.MultiHeadAttention with packed inputs ⇒ the same operator with separate query, key and value.
 *
 * <p>Spec: a query alone is packed QKV [B, S, N, 3, H]; a key without a value is packed KV [B, L, N, 2, H].
 * ORT's CPU kernel implements neither ("Packed QKV of shape (B, L, N, 3, H) not implemented for CPU"), but it
 * does implement the unpacked form, so the packed tensor is split on axis 3 and each part reshaped to
 * [B, S, N·H]; every other input and attribute is kept.
 */
final class PackedAttentionLowering implements OpLowering {
  @Override
  public OpType op() {
    return Microsoft.MULTI_HEAD_ATTENTION;
  }

  @Override
  public boolean applies(Node node, Emitter emitter) {
    return isPackedQkv(node) || isPackedKv(node);
  }

  static boolean isPackedQkv(Node node) {
    return node.input(1) == null && node.input(2) == null;
  }

  static boolean isPackedKv(Node node) {
    return node.input(1) != null && node.input(2) == null;
  }

  @Override
  public List<Value> lower(Node node, Emitter emitter) {
    List<Value> inputs = new ArrayList<>(node.inputs());
    while (inputs.size() < 3) {
      inputs.add(null);
    }
    if (isPackedQkv(node)) {
      List<Value> parts = unpack(emitter, node.input(0), 3);
      inputs.set(0, parts.get(0));
      inputs.set(1, parts.get(1));
      inputs.set(2, parts.get(2));
    } else {
      List<Value> parts = unpack(emitter, node.input(1), 2);
      inputs.set(1, parts.get(0));
      inputs.set(2, parts.get(1));
    }
    List<Value> outputs = emitter.ops(Microsoft.MULTI_HEAD_ATTENTION, node.outputCount(), inputs,
        node.attributes().toArray(new Attribute[0]));
    return Arrays.asList(outputs.toArray(new Value[0]));
  }

  /** [B, S, N, parts, H] → parts × [B, S, N·H]. */
  static List<Value> unpack(Emitter emitter, Value packed, int parts) {
    int rank = emitter.rank(packed, "packed input");
    if (rank != 5) {
      throw emitter.failure("packed input '" + packed.name() + "' has rank " + rank + ", expected 5 [B, S, N, "
          + parts + ", H]");
    }
    long[] sizes = new long[parts];
    Arrays.fill(sizes, 1);
    List<Value> unpacked = new ArrayList<>();
    for (Value part : emitter.split(packed, 3, sizes)) {
      unpacked.add(emitter.reshape(part, 0, 0, -1));
    }
    return unpacked;
  }
}
