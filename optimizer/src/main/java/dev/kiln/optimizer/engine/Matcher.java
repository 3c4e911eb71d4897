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

/**
 * Backtracking matcher. Bindings live in identity maps with an undo trail, so alternatives (operand order,
 * any-of variants, optional Casts) are tried without copying state; the first complete match wins.
 */
final class Matcher {
  private final Map<Pattern.Op, Node> boundNodes = new IdentityHashMap<>();
  private final Map<String, Value> boundValues = new LinkedHashMap<>();
  private final Map<Node, Pattern.Op> nodeOwners = new IdentityHashMap<>();
  private final List<Runnable> trail = new ArrayList<>();

  private interface Continuation {
    boolean proceed();
  }

  /** Tries {@code pattern} with its root at {@code node}; null when it does not match. */
  static Match match(Pattern pattern, Node node, Model model, ShapeInference shapes) {
    Matcher matcher = new Matcher();
    for (Value output : node.outputs()) {
      if (output == null) {
        continue;
      }
      if (matcher.matchValue(pattern, output, () -> true)) {
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
    return null;
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

  private boolean matchValue(Pattern pattern, Value value, Continuation next) {
    if (value == null) {
      return false;
    }
    if (pattern instanceof Pattern.Any any) {
      return bindValue(any.name(), value, next);
    }
    if (pattern instanceof Pattern.Constant constant) {
      Tensor tensor = Constants.tensor(value);
      if (tensor == null) {
        return false;
      }
      if (constant.requiredScalar() != null && !Constants.allEqual(tensor, constant.requiredScalar())) {
        return false;
      }
      return constant.name() == null ? next.proceed() : bindValue(constant.name(), value, next);
    }
    if (pattern instanceof Pattern.AnyOf anyOf) {
      int mark = trail.size();
      for (Pattern alternative : anyOf.alternatives()) {
        if (matchValue(alternative, value, next)) {
          return true;
        }
        undoTo(mark);
      }
      return false;
    }
    if (pattern instanceof Pattern.OptionalCast cast) {
      int mark = trail.size();
      if (matchValue(cast.inner(), value, next)) {
        return true;
      }
      undoTo(mark);
      Node producer = value.producer();
      if (producer != null && producer.is(Onnx.CAST) && !nodeOwners.containsKey(producer)) {
        Pattern.Op castOp = new Pattern.Op(java.util.Set.of(Onnx.CAST), List.of(cast.inner()), false);
        if (matchValue(castOp, value, next)) {
          return true;
        }
        undoTo(mark);
      }
      return false;
    }
    return matchOp((Pattern.Op) pattern, value, next);
  }

  private boolean matchOp(Pattern.Op op, Value value, Continuation next) {
    Node producer = value.producer();
    if (producer == null || value.producerIndex() != op.outputIndex) {
      return false;
    }
    Node already = boundNodes.get(op);
    if (already != null) {
      return already == producer && next.proceed();
    }
    if (!op.types.contains(producer.opType()) || nodeOwners.containsKey(producer)) {
      return false;
    }
    int present = producer.inputCount();
    while (present > 0 && producer.input(present - 1) == null) {
      present--;
    }
    if (present < op.inputs.size() || (present > op.inputs.size() && !op.trailingInputsAllowed)) {
      return false;
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
    return matchValue(op.inputs.get(position), node.input(inputIndex),
        () -> matchInputs(op, node, order, position + 1, next));
  }

  private boolean bindValue(String name, Value value, Continuation next) {
    Value already = boundValues.get(name);
    if (already != null) {
      return already == value && next.proceed();
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
