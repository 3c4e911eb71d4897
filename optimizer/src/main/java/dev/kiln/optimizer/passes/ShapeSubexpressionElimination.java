package dev.kiln.optimizer.passes;

import dev.kiln.graph.Attribute;
import dev.kiln.graph.DataType;
import dev.kiln.graph.Graph;
import dev.kiln.graph.Model;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.OpType;
import dev.kiln.graph.Value;
import dev.kiln.graph.infer.ShapeInference;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Merges identical shape computations: torch exports a fresh {@code Shape → Gather → Unsqueeze} chain for every
 * {@code tensor.shape[i]} it traces, so the same size is computed dozens of times. Two nodes are identical when
 * they have the same op, attributes and input values; only nodes producing integer or boolean tensors (the
 * shape arithmetic) and {@code Shape} itself are merged, never float math.
 */
public final class ShapeSubexpressionElimination implements GraphPass {
  private static final Set<OpType> CANDIDATES = Set.of(Onnx.SHAPE, Onnx.GATHER, Onnx.UNSQUEEZE, Onnx.SQUEEZE,
      Onnx.CONCAT, Onnx.CAST, Onnx.SLICE, Onnx.CONSTANT, Onnx.DIV, Onnx.MUL, Onnx.ADD, Onnx.SUB, Onnx.EQUAL,
      Onnx.WHERE, Onnx.CONSTANT_OF_SHAPE, Onnx.RANGE, Onnx.REDUCE_PROD, Onnx.LESS, Onnx.GREATER, Onnx.NOT);

  @Override
  public String name() {
    return "merge-shape-subexpressions";
  }

  @Override
  public int run(Model model) {
    Graph graph = model.graph();
    ShapeInference shapes = ShapeInference.of(model);
    Map<String, Node> seen = new HashMap<>();
    Map<Value, Integer> ids = new IdentityHashMap<>();
    int merged = 0;
    for (Node node : new ArrayList<>(graph.nodes())) {
      if (!CANDIDATES.contains(node.opType()) || !node.subgraphs().isEmpty() || !integral(node, shapes)) {
        continue;
      }
      boolean exposed = false;
      for (Value output : node.outputs()) {
        exposed |= output != null && output.isGraphOutput();
      }
      if (exposed) {
        continue;
      }
      StringBuilder key = new StringBuilder(node.opType().key());
      for (Value input : node.inputs()) {
        key.append('|').append(input == null ? "-" : inputKey(input, ids));
      }
      List<String> attributes = new ArrayList<>();
      for (Attribute attribute : node.attributes()) {
        attributes.add(attribute.toString());
      }
      attributes.sort(null);
      key.append('|').append(attributes).append('|').append(node.outputCount());
      Node first = seen.putIfAbsent(key.toString(), node);
      if (first == null) {
        continue;
      }
      for (int i = 0; i < node.outputCount(); i++) {
        if (node.output(i) != null && first.output(i) != null) {
          node.output(i).replaceAllUsesWith(first.output(i));
        }
      }
      graph.remove(node);
      merged++;
    }
    return merged;
  }

  /** Small constants compare by content (two initializers holding [0] are the same input); others by identity. */
  private static String inputKey(Value input, Map<Value, Integer> ids) {
    dev.kiln.graph.Tensor constant = dev.kiln.optimizer.engine.Constants.tensor(input);
    if (constant != null && constant.elementCount() <= 64 && constant.dataType() != DataType.STRING) {
      return "c" + constant.dataType() + java.util.Arrays.toString(constant.dims())
          + (constant.dataType().isFloatingPoint() ? java.util.Arrays.toString(constant.floats())
              : java.util.Arrays.toString(constant.longs()));
    }
    return "v" + ids.computeIfAbsent(input, value -> ids.size());
  }

  private static boolean integral(Node node, ShapeInference shapes) {
    if (node.is(Onnx.SHAPE)) {
      return true;
    }
    for (Value output : node.outputs()) {
      if (output == null) {
        continue;
      }
      DataType type = shapes.dataType(output);
      if (type != DataType.INT64 && type != DataType.INT32 && type != DataType.BOOL) {
        return false;
      }
    }
    return true;
  }
}
