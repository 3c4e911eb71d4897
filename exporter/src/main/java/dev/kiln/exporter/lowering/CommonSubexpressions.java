package dev.kiln.exporter.lowering;

import dev.kiln.graph.Attribute;
import dev.kiln.graph.Graph;
import dev.kiln.graph.Node;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Merges nodes that compute the same thing: same op, same inputs, same attributes (constants by their bytes). Traced
 * code repeats work torch's eager module shares — every ResNet block applies SiLU to the same time embedding, every
 * attention reads the same sizes — and torch.onnx.export merges these with its JIT's CSE pass; so does the exporter.
 * Graph outputs are never merged away.
 */
public final class CommonSubexpressions {
  private CommonSubexpressions() {}

  /** Returns how many nodes were merged into an earlier twin. */
  public static int merge(Graph graph) {
    Map<String, Node> seen = new HashMap<>();
    Map<Value, Integer> ids = new HashMap<>();
    int merged = 0;
    for (Node node : new ArrayList<>(graph.nodes())) {
      String key = key(node, ids);
      Node twin = key == null ? null : seen.get(key);
      if (twin != null && node.outputs().stream().noneMatch(Value::isGraphOutput)) {
        for (int index = 0; index < node.outputCount(); index++) {
          node.output(index).replaceAllUsesWith(twin.output(index));
        }
        graph.remove(node);
        merged++;
        continue;
      }
      if (key != null) {
        seen.put(key, node);
      }
    }
    return merged;
  }

  private static String key(Node node, Map<Value, Integer> ids) {
    if (!node.subgraphs().isEmpty()) {
      return null;
    }
    StringBuilder key = new StringBuilder(node.opType().toString()).append('(');
    for (Value input : node.inputs()) {
      key.append(input == null ? "-" : ids.computeIfAbsent(input, value -> ids.size())).append(',');
    }
    key.append(')');
    for (Attribute attribute : node.attributes()) {
      key.append(attribute.name()).append('=');
      if (attribute.kind() == Attribute.Kind.TENSOR) {
        Tensor tensor = attribute.asTensor();
        if (tensor.byteSize() > 4096) {
          return null;
        }
        ByteBuffer bytes = tensor.bytes();
        byte[] content = new byte[bytes.remaining()];
        bytes.duplicate().get(content);
        key.append(tensor.dataType()).append(Arrays.toString(tensor.dims())).append(Arrays.toString(content));
      } else if (attribute.kind() == Attribute.Kind.FLOATS) {
        key.append(Arrays.toString(attribute.asFloats()));
      } else if (attribute.kind() == Attribute.Kind.INTS) {
        key.append(Arrays.toString(attribute.asLongs()));
      } else if (attribute.kind() == Attribute.Kind.STRINGS) {
        key.append(attribute.asStrings());
      } else if (attribute.kind() == Attribute.Kind.FLOAT || attribute.kind() == Attribute.Kind.INT || attribute.kind() == Attribute.Kind.STRING) {
        key.append(attribute.value());
      } else {
        return null;
      }
      key.append(';');
    }
    return key.toString();
  }
}
