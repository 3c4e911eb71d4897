package dev.kiln.optimizer.engine;

import dev.kiln.graph.Graph;
import dev.kiln.graph.Model;
import dev.kiln.graph.Node;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import dev.kiln.graph.infer.ShapeInference;
import java.util.Collections;
import java.util.List;
import java.util.Map;

/** One matched site: the root node, every node the pattern covered, and what its names were bound to. */
public final class Match {
  private final Node root;
  private final List<Node> nodes;
  private final Map<String, Value> values;
  private final Map<String, Node> namedNodes;
  private final java.util.Set<Node> escapable;
  private final Model model;
  private final ShapeInference shapes;

  Match(Node root, List<Node> nodes, Map<String, Value> values, Map<String, Node> namedNodes,
      java.util.Set<Node> escapable, Model model, ShapeInference shapes) {
    this.escapable = escapable;
    this.root = root;
    this.nodes = nodes;
    this.values = values;
    this.namedNodes = namedNodes;
    this.model = model;
    this.shapes = shapes;
  }

  public Node root() {
    return root;
  }

  /** Every node the pattern covered, in graph order. */
  public List<Node> nodes() {
    return Collections.unmodifiableList(nodes);
  }

  /** Whether the pattern allowed {@code node}'s outputs to have users outside the site. */
  boolean mayEscape(Node node) {
    return escapable.contains(node);
  }

  public Graph graph() {
    return root.graph();
  }

  public Model model() {
    return model;
  }

  public ShapeInference shapes() {
    return shapes;
  }

  /** The value bound to {@code name} by {@code any}, {@code input} or {@code constant}. */
  public Value value(String name) {
    Value value = values.get(name);
    if (value == null) {
      throw new IllegalArgumentException("pattern binds no value named '" + name + "' (has " + values.keySet() + ")");
    }
    return value;
  }

  public boolean hasValue(String name) {
    return values.containsKey(name);
  }

  /** The node bound by {@code .as(name)}. */
  public Node node(String name) {
    Node node = namedNodes.get(name);
    if (node == null) {
      throw new IllegalArgumentException("pattern binds no node named '" + name + "' (has " + namedNodes.keySet() + ")");
    }
    return node;
  }

  public boolean hasNode(String name) {
    return namedNodes.containsKey(name);
  }

  /** Constant data of a value bound by {@code constant(name)}. */
  public Tensor constant(String name) {
    return Constants.tensor(value(name));
  }

  /** The single value of a one-element constant, or NaN. */
  public double scalar(String name) {
    return Constants.scalar(constant(name));
  }

  /** The value bound to {@code key}. */
  public Value value(ValueKey key) {
    return value(key.name());
  }

  /** The node bound to {@code key}. */
  public Node node(NodeKey key) {
    return node(key.name());
  }

  public boolean hasNode(NodeKey key) {
    return hasNode(key.name());
  }

  /** Constant data of the value bound to {@code key}. */
  public Tensor constant(ValueKey key) {
    return constant(key.name());
  }

  /** The single value of a one-element constant bound to {@code key}, or NaN. */
  public double scalar(ValueKey key) {
    return scalar(key.name());
  }

  /** Inferred shape of the value bound to {@code key}; null when inference could not decide its rank. */
  public Shape shape(ValueKey key) {
    return shape(key.name());
  }

  /** Inferred shape of the value bound to {@code name}; null when inference could not decide its rank. */
  public Shape shape(String name) {
    return shapes.shape(value(name));
  }

  public Shape shape(Value value) {
    return shapes.shape(value);
  }

  /** Names for messages: the root node's name or its op. */
  @Override
  public String toString() {
    return root.toString();
  }
}
