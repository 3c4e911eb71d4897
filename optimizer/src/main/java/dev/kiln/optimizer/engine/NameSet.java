package dev.kiln.optimizer.engine;

import dev.kiln.graph.Graph;
import dev.kiln.graph.Node;
import dev.kiln.graph.Value;
import java.util.HashSet;
import java.util.Set;

/** Every node and value name in a model, collected once, so new names are unique without rescanning per node. */
final class NameSet {
  private final Set<String> nodeNames = new HashSet<>();
  private final Set<String> valueNames = new HashSet<>();

  NameSet(Graph graph) {
    graph.inputs().forEach(value -> valueNames.add(value.name()));
    graph.initializers().forEach(value -> valueNames.add(value.name()));
    graph.sparseInitializers().forEach(value -> valueNames.add(value.name()));
    graph.forEachNode(node -> {
      nodeNames.add(node.name());
      for (Value output : node.outputs()) {
        if (output != null) {
          valueNames.add(output.name());
        }
      }
      for (Graph subgraph : node.subgraphs()) {
        subgraph.inputs().forEach(value -> valueNames.add(value.name()));
        subgraph.initializers().forEach(value -> valueNames.add(value.name()));
      }
    });
  }

  String freshNode(String base) {
    return fresh(nodeNames, base);
  }

  String freshValue(String base) {
    return fresh(valueNames, base);
  }

  private static String fresh(Set<String> taken, String base) {
    if (taken.add(base)) {
      return base;
    }
    for (int suffix = 1; ; suffix++) {
      String candidate = base + "_" + suffix;
      if (taken.add(candidate)) {
        return candidate;
      }
    }
  }

  static String nodeNameOf(Node node) {
    return node.name();
  }
}
