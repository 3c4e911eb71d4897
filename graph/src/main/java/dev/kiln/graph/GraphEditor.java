package dev.kiln.graph;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The one way passes add to a graph: fresh value and node names, new nodes and initializers, and the
 * replacement of a value that keeps the graph's interface names. It collects every name of the model once
 * (main graph and all bodies), so each fresh name costs O(1) amortised: a per-base counter remembers the
 * last suffix handed out, and names are never freed, so it returns exactly what a scan from {@code _1} would.
 *
 * <p>Names: {@code base} itself when free, else {@code base_1}, {@code base_2}, ... A node made here is named
 * {@code fresh(base)} and its outputs {@code nodeName_output_i}, the way torch's exporter names them. The
 * editor knows only the names that existed when it was made and those it handed out; code that names values
 * by other means while an editor is in use should ask it first ({@link #freshValueName}).
 */
public final class GraphEditor {
  private final Graph graph;
  private final Names valueNames = new Names();
  private final Names nodeNames = new Names();

  /** An editor of {@code graph} whose names are unique in the whole model {@code graph} belongs to. */
  public GraphEditor(Graph graph) {
    this.graph = graph;
    collect(graph.root());
  }

  private void collect(Graph scope) {
    scope.inputs.forEach(value -> valueNames.taken.add(value.name()));
    scope.initializers.forEach(value -> valueNames.taken.add(value.name()));
    scope.sparseInitializers.forEach(value -> valueNames.taken.add(value.name()));
    for (Node node : scope.nodes) {
      nodeNames.taken.add(node.name());
      for (Value output : node.outputs) {
        if (output != null) {
          valueNames.taken.add(output.name());
        }
      }
      for (Graph subgraph : node.subgraphs()) {
        collect(subgraph);
      }
    }
  }

  public Graph graph() {
    return graph;
  }

  /** A value name used nowhere in the model, reserved from now on. */
  public String freshValueName(String base) {
    return valueNames.fresh(base);
  }

  /** A node name used nowhere in the model, reserved from now on. */
  public String freshNodeName(String base) {
    return nodeNames.fresh(base);
  }

  /** A detached node of {@code type} named {@code fresh(nameBase)} with {@code outputCount} outputs. */
  public Node newNode(OpType type, String nameBase, List<Value> inputs, int outputCount, Attribute... attributes) {
    boolean[] present = new boolean[outputCount];
    java.util.Arrays.fill(present, true);
    return newNode(type, nameBase, inputs, present, attributes);
  }

  /**
   * A detached node whose outputs exist where {@code present} is true and are omitted (null) elsewhere; a null
   * input is an omitted optional input. Output i is named {@code nodeName_output_i}.
   */
  public Node newNode(OpType type, String nameBase, List<Value> inputs, boolean[] present, Attribute... attributes) {
    String nodeName = freshNodeName(nameBase);
    List<String> outputNames = new ArrayList<>();
    for (int i = 0; i < present.length; i++) {
      outputNames.add(present[i] ? freshValueName(nodeName + "_output_" + i) : null);
    }
    Node node = new Node(type, nodeName, new ArrayList<>(inputs), outputNames);
    for (Attribute attribute : attributes) {
      node.setAttribute(attribute);
    }
    return node;
  }

  /** A detached one-output node named {@code fresh(nameBase)} whose output is named {@code fresh(outputBase)}. */
  public Node newNode(OpType type, String nameBase, List<Value> inputs, String outputBase, Attribute... attributes) {
    Node node = Node.create(type, freshNodeName(nameBase), new ArrayList<>(inputs), freshValueName(outputBase));
    for (Attribute attribute : attributes) {
      node.setAttribute(attribute);
    }
    return node;
  }

  /** Inserts a detached node right before {@code anchor}, or at the end when {@code anchor} is null. */
  public void insertBefore(Node anchor, Node node) {
    if (anchor == null) {
      graph.append(node);
    } else {
      graph.insertBefore(anchor, node);
    }
  }

  /** A new initializer of the edited graph named {@code fresh(nameBase)}. */
  public Value addInitializer(String nameBase, Tensor tensor) {
    Value value = newInitializer(nameBase, tensor);
    graph.addInitializer(value);
    return value;
  }

  /**
   * A staged initializer: a value named {@code fresh(nameBase)} carrying {@code tensor}, in no graph until
   * {@link Graph#addInitializer(Value)} adds it, so an abandoned edit leaves nothing behind. Nodes may read it
   * before then.
   */
  public Value newInitializer(String nameBase, Tensor tensor) {
    Value value = new Value(freshValueName(nameBase));
    value.initializer = tensor;
    return value;
  }

  /**
   * Makes every consumer of {@code original} read {@code replacement} ({@link Value#replaceAllUsesWith}). When
   * {@code original} is a graph output the interface keeps its name and declared type: the replacement takes
   * both over, and {@code original} is renamed {@code fresh(name + "_replaced")}.
   */
  public void replaceKeepingInterface(Value original, Value replacement) {
    if (original == replacement) {
      return;
    }
    if (original.isGraphOutput()) {
      String name = original.name();
      original.setName(freshValueName(name + "_replaced"));
      replacement.setName(name);
      if (original.dataType() != null) {
        replacement.setType(original.dataType(), original.shape());
      }
    }
    original.replaceAllUsesWith(replacement);
  }

  /** Taken names and, per base, the suffix to try next. */
  private static final class Names {
    final Set<String> taken = new HashSet<>();
    final Map<String, Integer> nextSuffix = new HashMap<>();

    String fresh(String base) {
      if (taken.add(base)) {
        return base;
      }
      int suffix = nextSuffix.getOrDefault(base, 1);
      while (!taken.add(base + "_" + suffix)) {
        suffix++;
      }
      nextSuffix.put(base, suffix + 1);
      return base + "_" + suffix;
    }
  }
}
