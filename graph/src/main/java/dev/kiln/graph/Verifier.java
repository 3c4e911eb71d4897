package dev.kiln.graph;

import dev.kiln.common.KilnException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Structural invariants of the IR, meant to run after every pass in tests: nodes in topological order,
 * one producer per value, use lists that match node inputs exactly (no dangling uses), graph outputs
 * that are defined, unique value names per graph, and subgraphs that only capture outer values defined
 * before their node.
 */
public final class Verifier {
  private final List<String> problems = new ArrayList<>();
  /** Every node reachable from the root, for the dangling-use check. */
  private final Set<Node> reachable = Collections.newSetFromMap(new IdentityHashMap<>());

  private Verifier() {}

  /** Every problem found, in a stable order; empty when the model is well formed. */
  public static List<String> check(Model model) {
    return check(model.graph());
  }

  public static List<String> check(Graph graph) {
    Verifier verifier = new Verifier();
    verifier.collect(graph);
    verifier.graph(graph, new Scope(null));
    return verifier.problems;
  }

  /** Throws {@link KilnException.ValidationFailed} listing the problems, if there are any. */
  public static void verify(Model model) {
    verify(model.graph());
  }

  public static void verify(Graph graph) {
    List<String> problems = check(graph);
    if (!problems.isEmpty()) {
      int shown = Math.min(problems.size(), 20);
      throw new KilnException.ValidationFailed("graph '" + graph.name() + "' is malformed (" + problems.size() + " problems): "
          + String.join("; ", problems.subList(0, shown)) + (shown < problems.size() ? "; ..." : ""));
    }
  }

  private static final class Scope {
    final Scope parent;
    final Set<Value> defined = Collections.newSetFromMap(new IdentityHashMap<>());
    /** Definition order, so problems come out in a stable order. */
    final List<Value> order = new ArrayList<>();

    Scope(Scope parent) {
      this.parent = parent;
    }

    boolean sees(Value value) {
      for (Scope scope = this; scope != null; scope = scope.parent) {
        if (scope.defined.contains(value)) {
          return true;
        }
      }
      return false;
    }
  }

  private void collect(Graph graph) {
    for (Node node : graph.nodes) {
      reachable.add(node);
      for (Graph subgraph : node.subgraphs()) {
        collect(subgraph);
      }
    }
  }

  private void graph(Graph graph, Scope outer) {
    String where = "graph '" + graph.name() + "'";
    Scope scope = new Scope(outer);
    Map<String, String> names = new HashMap<>();
    for (Value input : graph.inputs) {
      define(scope, names, input, where + " input", where);
      if (input.producer != null) {
        problems.add(where + ": input " + input + " also has a producer " + input.producer);
      }
    }
    for (Value value : graph.initializers) {
      if (value.initializer == null) {
        problems.add(where + ": initializer " + value + " has no tensor");
      }
      if (!scope.defined.contains(value)) {
        define(scope, names, value, where + " initializer", where);
      }
      if (value.producer != null) {
        problems.add(where + ": initializer " + value + " also has a producer " + value.producer);
      }
    }
    for (Value value : graph.sparseInitializers) {
      if (!scope.defined.contains(value)) {
        define(scope, names, value, where + " sparse initializer", where);
      }
    }
    for (int index = 0; index < graph.nodes.size(); index++) {
      Node node = graph.nodes.get(index);
      String label = where + ": node #" + index + " " + node;
      if (node.graph != graph) {
        problems.add(label + " believes it belongs to " + (node.graph == null ? "no graph" : "graph '" + node.graph.name() + "'"));
      }
      if (!node.usesRegistered) {
        problems.add(label + " has not registered its input uses");
      }
      for (int i = 0; i < node.inputs.size(); i++) {
        Value input = node.inputs.get(i);
        if (input == null) {
          continue;
        }
        if (!scope.sees(input)) {
          problems.add(label + " input " + i + " " + input + " is not defined before it"
              + (input.producer != null && input.producer.graph == graph ? " (produced later by " + input.producer + ": not topological)" : ""));
        }
        if (countUse(input, node, i) != 1) {
          problems.add(label + " input " + i + " " + input + " is recorded " + countUse(input, node, i) + " times in its use list");
        }
      }
      for (Graph subgraph : node.subgraphs()) {
        if (subgraph.ownerNode != node) {
          problems.add(label + " subgraph '" + subgraph.name() + "' does not know its owner node");
        }
        graph(subgraph, scope);
      }
      for (int i = 0; i < node.outputs.size(); i++) {
        Value output = node.outputs.get(i);
        if (output == null) {
          continue;
        }
        if (output.producer != node || output.producerIndex != i) {
          problems.add(label + " output " + i + " " + output + " names another producer " + output.producer + " #" + output.producerIndex);
        }
        if (scope.defined.contains(output)) {
          problems.add(label + " output " + output + " is produced twice");
        }
        define(scope, names, output, label + " output", where);
      }
    }
    for (Value output : graph.outputs) {
      if (!scope.sees(output)) {
        problems.add(where + ": output " + output + " is not produced by any node, input or initializer in scope");
      }
      if (!output.outputOf.contains(graph)) {
        problems.add(where + ": output " + output + " does not record that it is a graph output");
      }
    }
    for (Value value : scope.order) {
      for (Use use : value.uses) {
        if (!reachable.contains(use.node())) {
          problems.add(where + ": value " + value + " has a dangling use by " + use.node() + " (not in the model)");
        } else if (use.node().input(use.inputIndex()) != value) {
          problems.add(where + ": value " + value + " lists a use at input " + use.inputIndex() + " of " + use.node() + ", which holds "
              + use.node().input(use.inputIndex()));
        }
      }
    }
  }

  private void define(Scope scope, Map<String, String> names, Value value, String what, String where) {
    if (scope.defined.add(value)) {
      scope.order.add(value);
    }
    String previous = names.putIfAbsent(value.name(), what);
    if (previous != null) {
      problems.add(where + ": value name '" + value.name() + "' is used by both " + previous + " and " + what);
    }
  }

  private static int countUse(Value value, Node node, int index) {
    int count = 0;
    for (Use use : value.uses) {
      if (use.node() == node && use.inputIndex() == index) {
        count++;
      }
    }
    return count;
  }
}
