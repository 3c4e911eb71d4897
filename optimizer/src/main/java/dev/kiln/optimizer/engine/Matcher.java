package dev.kiln.optimizer.engine;

import dev.kiln.graph.Model;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import dev.kiln.graph.infer.ShapeInference;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * Backtracking matcher. Bindings live in identity maps with an undo trail, so alternatives (operand order,
 * any-of variants, optional Casts) are tried without copying state; the first complete match wins.
 *
 * <p>When a candidate (a node the root op accepts) does not match, the matcher says why: of all the edges it
 * failed on, the one reached with the most nodes bound, described as "input 1 of Div: expected Sqrt, found Add".
 */
final class Matcher {
  private final Map<Pattern.Op, Node> boundNodes = new IdentityHashMap<>();
  private final Map<String, Value> boundValues = new LinkedHashMap<>();
  private final Map<Node, Pattern.Op> nodeOwners = new IdentityHashMap<>();
  private final List<Runnable> trail = new ArrayList<>();
  /** The failure with the most nodes bound so far (null until a candidate's root was bound). */
  private Miss furthest;
  private int furthestDepth;

  /** Input {@code inputIndex} of {@code node}: where a pattern piece is matched against a value. */
  private record Edge(Node node, int inputIndex) {}

  /** What was expected on an edge and what was found there. */
  private record Miss(Edge edge, String expected, String found) {
    String describe() {
      String where = edge == null ? "root output" : "input " + edge.inputIndex() + " of " + edge.node().opType().name();
      return where + ": expected " + expected + ", found " + found;
    }
  }

  private interface Continuation {
    boolean proceed();
  }

  /** Tries {@code pattern} with its root at {@code node}; null when it does not match. */
  static Match match(Pattern pattern, Node node, Model model, ShapeInference shapes) {
    return match(pattern, node, model, shapes, reason -> {});
  }

  /**
   * As {@link #match(Pattern, Node, Model, ShapeInference)}; when {@code node} is a candidate (the root op accepts
   * it) but the rest does not match, {@code nearMiss} is told the first failing edge of the furthest attempt.
   */
  static Match match(Pattern pattern, Node node, Model model, ShapeInference shapes, Consumer<String> nearMiss) {
    Matcher matcher = new Matcher();
    for (Value output : node.outputs()) {
      if (output == null) {
        continue;
      }
      if (matcher.matchValue(pattern, output, null, () -> true)) {
        if (matcher.rootOf(pattern) != node) {
          matcher.undoTo(0);
          continue;
        }
        List<Node> nodes = new ArrayList<>(matcher.nodeOwners.keySet());
        Map<String, Node> named = new LinkedHashMap<>();
        for (var entry : matcher.boundNodes.entrySet()) {
          if (entry.getKey().name != null) {
            named.put(entry.getKey().name, entry.getValue());
          }
        }
        java.util.Set<Node> escapable = java.util.Collections.newSetFromMap(new IdentityHashMap<>());
        for (var entry : matcher.nodeOwners.entrySet()) {
          if (entry.getValue().mayEscape) {
            escapable.add(entry.getKey());
          }
        }
        return new Match(node, nodes, new LinkedHashMap<>(matcher.boundValues), named, escapable, model, shapes);
      }
    }
    if (matcher.furthest != null) {
      nearMiss.accept(matcher.furthest.describe());
    }
    return null;
  }

  /** Records a failure on {@code edge} when it got further than any before (a root that was not bound is no candidate). */
  private boolean miss(Edge edge, String expected, Value found) {
    if (nodeOwners.size() > furthestDepth) {
      miss(edge, expected, describe(found));
    }
    return false;
  }

  private boolean miss(Edge edge, String expected, String found) {
    if (nodeOwners.size() > furthestDepth) {
      furthestDepth = nodeOwners.size();
      furthest = new Miss(edge, expected, found);
    }
    return false;
  }

  private static String describe(Value value) {
    if (value == null) {
      return "no value (omitted input)";
    }
    Node producer = value.producer();
    if (producer == null) {
      return value.isGraphInput() ? "a graph input" : value.isInitializer() ? "an initializer" : "an outer-scope value";
    }
    String op = producer.opType().name();
    return producer.outputCount() > 1 ? "output " + value.producerIndex() + " of " + op : op;
  }

  private static String describe(Pattern.Op op) {
    List<String> names = new ArrayList<>();
    op.types.forEach(type -> names.add(type.name()));
    java.util.Collections.sort(names);
    String types = String.join("|", names);
    return op.outputIndex == 0 ? types : "output " + op.outputIndex + " of " + types;
  }

  private Node rootOf(Pattern pattern) {
    if (pattern instanceof Pattern.Op op) {
      return boundNodes.get(op);
    }
    if (pattern instanceof Pattern.AnyOf anyOf) {
      for (Pattern alternative : anyOf.alternatives()) {
        Node root = rootOf(alternative);
        if (root != null) {
          return root;
        }
      }
    }
    if (pattern instanceof Pattern.OptionalCast cast) {
      return rootOf(cast.inner());
    }
    return null;
  }

  private boolean matchValue(Pattern pattern, Value value, Edge edge, Continuation next) {
    if (value == null) {
      return miss(edge, "a value", "no value (omitted input)");
    }
    if (pattern instanceof Pattern.Any any) {
      return bindValue(any.name(), value, edge, next);
    }
    if (pattern instanceof Pattern.Constant constant) {
      Tensor tensor = Constants.tensor(value);
      if (tensor == null) {
        return miss(edge, "a constant", value);
      }
      if (constant.requiredScalar() != null && !Constants.allEqual(tensor, constant.requiredScalar())) {
        return miss(edge, "the constant " + constant.requiredScalar(), "another constant");
      }
      return constant.name() == null ? next.proceed() : bindValue(constant.name(), value, edge, next);
    }
    if (pattern instanceof Pattern.AnyOf anyOf) {
      int mark = trail.size();
      for (Pattern alternative : anyOf.alternatives()) {
        if (matchValue(alternative, value, edge, next)) {
          return true;
        }
        undoTo(mark);
      }
      return false;
    }
    if (pattern instanceof Pattern.OptionalCast cast) {
      int mark = trail.size();
      if (matchValue(cast.inner(), value, edge, next)) {
        return true;
      }
      undoTo(mark);
      Node producer = value.producer();
      if (producer != null && producer.is(Onnx.CAST) && !nodeOwners.containsKey(producer)) {
        Pattern.Op castOp = new Pattern.Op(java.util.Set.of(Onnx.CAST), List.of(cast.inner()), false);
        if (matchValue(castOp, value, edge, next)) {
          return true;
        }
        undoTo(mark);
      }
      return false;
    }
    return matchOp((Pattern.Op) pattern, value, edge, next);
  }

  private boolean matchOp(Pattern.Op op, Value value, Edge edge, Continuation next) {
    Node producer = value.producer();
    if (producer == null || value.producerIndex() != op.outputIndex || !op.types.contains(producer.opType())) {
      return miss(edge, describe(op), value);
    }
    Node already = boundNodes.get(op);
    if (already != null) {
      return already == producer ? next.proceed() : miss(edge, "the same " + describe(op) + " as before", "another one");
    }
    if (nodeOwners.containsKey(producer)) {
      return miss(edge, describe(op), "a " + producer.opType().name() + " the pattern already covers");
    }
    int present = producer.inputCount();
    while (present > 0 && producer.input(present - 1) == null) {
      present--;
    }
    if (present < op.inputs.size() || (present > op.inputs.size() && !op.trailingInputsAllowed)) {
      return miss(edge, describe(op) + " with " + op.inputs.size() + " inputs", producer.opType().name() + " with " + present);
    }
    int mark = trail.size();
    boundNodes.put(op, producer);
    nodeOwners.put(producer, op);
    trail.add(() -> {
      boundNodes.remove(op);
      nodeOwners.remove(producer);
    });
    if (matchInputs(op, producer, new int[] {0, 1}, 0, next)) {
      return true;
    }
    if (op.commutative) {
      undoTo(mark + 1);
      if (matchInputs(op, producer, new int[] {1, 0}, 0, next)) {
        return true;
      }
    }
    undoTo(mark);
    return false;
  }

  private boolean matchInputs(Pattern.Op op, Node node, int[] order, int position, Continuation next) {
    if (position == op.inputs.size()) {
      return next.proceed();
    }
    int inputIndex = op.inputs.size() == 2 ? order[position] : position;
    return matchValue(op.inputs.get(position), node.input(inputIndex), new Edge(node, inputIndex),
        () -> matchInputs(op, node, order, position + 1, next));
  }

  private boolean bindValue(String name, Value value, Edge edge, Continuation next) {
    Value already = boundValues.get(name);
    if (already != null) {
      return already == value ? next.proceed() : miss(edge, "the value bound to '" + name + "'", "another value");
    }
    boundValues.put(name, value);
    int mark = trail.size();
    trail.add(() -> boundValues.remove(name));
    if (next.proceed()) {
      return true;
    }
    undoTo(mark);
    return false;
  }

  private void undoTo(int mark) {
    while (trail.size() > mark) {
      trail.remove(trail.size() - 1).run();
    }
  }
}
