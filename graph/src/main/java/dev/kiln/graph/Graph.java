package dev.kiln.graph;

import dev.kiln.graph.proto.OnnxProto.GraphProto;
import dev.kiln.graph.proto.OnnxProto.ValueInfoProto;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * A graph: inputs, initializers, nodes in topological order, outputs. The main graph of a model and
 * every If/Loop/Scan body are Graphs; a body's nodes may consume values of enclosing graphs directly
 * (outer-scope references are ordinary object references, recorded as uses on the outer value).
 */
public final class Graph {
  private String name;
  final List<Value> inputs = new ArrayList<>();
  final List<Value> outputs = new ArrayList<>();
  final List<Value> initializers = new ArrayList<>();
  final List<Value> sparseInitializers = new ArrayList<>();
  final List<Node> nodes = new ArrayList<>();
  private String docString = "";
  private final Map<String, String> metadata = new LinkedHashMap<>();
  Node ownerNode;

  /** Residue of the read GraphProto: quantization annotations, unknown fields, name/doc spelling. */
  GraphProto original;
  /** value_info entries in file order: a value (or null when the name matched nothing) and its proto. */
  final List<InfoSlot> valueInfo = new ArrayList<>();
  final Map<Value, ValueInfoProto> inputInfo = new IdentityHashMap<>();
  final Map<Value, ValueInfoProto> outputInfo = new IdentityHashMap<>();

  record InfoSlot(Value value, ValueInfoProto proto) {}

  public Graph(String name) {
    this.name = name == null ? "" : name;
  }

  public String name() {
    return name;
  }

  public void setName(String name) {
    this.name = name == null ? "" : name;
  }

  public String docString() {
    return docString;
  }

  public void setDocString(String docString) {
    this.docString = docString == null ? "" : docString;
  }

  /** metadata_props of the graph (IR 10), in file order; mutable. */
  public Map<String, String> metadata() {
    return metadata;
  }

  /** The node whose attribute holds this graph, or null for a main graph. */
  public Node ownerNode() {
    return ownerNode;
  }

  /** The enclosing graph, or null for a main graph. */
  public Graph parent() {
    return ownerNode == null ? null : ownerNode.graph();
  }

  /** The outermost enclosing graph (this one for a main graph). */
  public Graph root() {
    Graph graph = this;
    while (graph.parent() != null) {
      graph = graph.parent();
    }
    return graph;
  }

  // ----- inputs, outputs, initializers -----

  public List<Value> inputs() {
    return Collections.unmodifiableList(inputs);
  }

  public List<Value> outputs() {
    return Collections.unmodifiableList(outputs);
  }

  /** Initializers (dense), in file order. Some may also be graph inputs. */
  public List<Value> initializers() {
    return Collections.unmodifiableList(initializers);
  }

  public List<Value> sparseInitializers() {
    return Collections.unmodifiableList(sparseInitializers);
  }

  public Value addInput(String valueName, DataType dataType, Shape shape) {
    Value value = new Value(valueName, dataType, shape);
    addInput(value);
    return value;
  }

  public void addInput(Value value) {
    if (value.producer != null) {
      throw new IllegalArgumentException("value '" + value.name() + "' is produced by " + value.producer + "; it cannot be a graph input");
    }
    if (value.owner != null && value.owner != this) {
      throw new IllegalArgumentException("value '" + value.name() + "' belongs to another graph");
    }
    value.owner = this;
    inputs.add(value);
  }

  /** Removes a graph input that nothing uses (its initializer, if any, stays). */
  public void removeInput(Value value) {
    if (!inputs.contains(value)) {
      throw new IllegalArgumentException("'" + value.name() + "' is not an input of graph '" + name + "'");
    }
    if (value.hasUses() && value.initializer == null) {
      throw new IllegalStateException("graph input '" + value.name() + "' is still used by " + value.uses().get(0).node());
    }
    inputs.remove(value);
    inputInfo.remove(value);
  }

  public Value addInitializer(String valueName, Tensor tensor) {
    Value value = new Value(valueName);
    value.initializer = tensor;
    addInitializer(value);
    return value;
  }

  /** Adds a detached value that carries constant data ({@link GraphEditor#newInitializer}) as an initializer. */
  public void addInitializer(Value value) {
    if (value.initializer == null || value.owner != null || value.producer != null) {
      throw new IllegalArgumentException("value '" + value.name() + "' is not a detached initializer");
    }
    value.owner = this;
    initializers.add(value);
  }

  /** Gives graph input {@code input} a default (the IR-3 way): it stays an input and becomes an initializer too. */
  public void setInputDefault(Value input, Tensor tensor) {
    if (input.owner != this || !inputs.contains(input) || input.isInitializer()) {
      throw new IllegalArgumentException("'" + input.name() + "' is not an input of graph '" + name + "' without a default");
    }
    input.initializer = tensor;
    initializers.add(input);
  }

  /** Removes an initializer nothing uses any more (a graph input of the same value stays an input). */
  public void removeInitializer(Value value) {
    if (!initializers.remove(value) && !sparseInitializers.remove(value)) {
      throw new IllegalArgumentException("'" + value.name() + "' is not an initializer of graph '" + name + "'");
    }
    boolean input = inputs.contains(value);
    if (!input && value.consumerCount() > 0) {
      initializers.add(value);
      throw new IllegalStateException("initializer '" + value.name() + "' is still used");
    }
    value.initializer = null;
    value.sparseInitializer = null;
    if (!input) {
      value.owner = null;
    }
  }

  public void addOutput(Value value) {
    outputs.add(value);
    value.outputOf.add(this);
  }

  public void setOutput(int index, Value value) {
    Value previous = outputs.get(index);
    if (previous == value) {
      return;
    }
    previous.outputOf.remove(this);
    ValueInfoProto info = outputInfo.remove(previous);
    outputs.set(index, value);
    value.outputOf.add(this);
    if (info != null && !outputInfo.containsKey(value)) {
      outputInfo.put(value, info);
    }
  }

  public void removeOutput(int index) {
    Value previous = outputs.remove(index);
    previous.outputOf.remove(this);
    if (!outputs.contains(previous)) {
      outputInfo.remove(previous);
    }
  }

  /** Adds a sparse initializer, kept in its ONNX form (a graph input of the same value stays an input). */
  void addSparseInitializer(Value value, dev.kiln.graph.proto.OnnxProto.SparseTensorProto sparse) {
    if (value.isInitializer() || (value.owner != null && value.owner != this)) {
      throw new IllegalArgumentException("value '" + value.name() + "' is already an initializer or in another graph");
    }
    value.sparseInitializer = sparse;
    value.owner = this;
    sparseInitializers.add(value);
  }

  // ----- what the reader saw, kept for the writer -----

  /** Keeps the GraphProto's residue (quantization annotations, unknown fields, name/doc spelling). */
  void keepResidue(GraphProto residue) {
    this.original = residue;
  }

  /** Keeps the ValueInfoProto an input was declared with. */
  void keepInputInfo(Value input, ValueInfoProto info) {
    inputInfo.put(input, info);
  }

  /** Keeps the ValueInfoProto of the first listing of an output. */
  void keepOutputInfo(Value output, ValueInfoProto info) {
    outputInfo.putIfAbsent(output, info);
  }

  /** Keeps a value_info entry in file order; {@code value} is null when its name matched nothing. */
  void keepValueInfo(Value value, ValueInfoProto info) {
    valueInfo.add(new InfoSlot(value, info));
  }

  /** Values named by value_info but defined in an enclosing graph keep their as-read type too. */
  void keepValueInfoReadTypes() {
    for (InfoSlot slot : valueInfo) {
      if (slot.value() != null && slot.value().readType == null) {
        slot.value().keepReadType();
      }
    }
  }

  // ----- nodes -----

  public List<Node> nodes() {
    return Collections.unmodifiableList(nodes);
  }

  public void append(Node node) {
    attach(node);
    nodes.add(node);
  }

  /** Inserts {@code node} right before {@code anchor}. */
  public void insertBefore(Node anchor, Node node) {
    int index = indexOf(anchor);
    attach(node);
    nodes.add(index, node);
  }

  /** Inserts {@code node} right after {@code anchor}. */
  public void insertAfter(Node anchor, Node node) {
    int index = indexOf(anchor);
    attach(node);
    nodes.add(index + 1, node);
  }

  /** Removes a node none of whose outputs is used or listed as a graph output. */
  public void remove(Node node) {
    if (node.graph != this) {
      throw new IllegalArgumentException(node + " is not in graph '" + name + "'");
    }
    for (Value output : node.outputs) {
      if (output != null && output.consumerCount() > 0) {
        String user = output.hasUses() ? output.uses.get(0).node().toString() : "a graph output";
        throw new IllegalStateException("cannot remove " + node + ": its output '" + output.name() + "' is still used by " + user);
      }
    }
    nodes.remove(indexOf(node));
    registerUses(node, false);
    node.graph = null;
  }

  /** Position of {@code node} in this graph's node list. */
  public int indexOf(Node node) {
    for (int i = 0; i < nodes.size(); i++) {
      if (nodes.get(i) == node) {
        return i;
      }
    }
    throw new IllegalArgumentException(node + " is not in graph '" + name + "'");
  }

  private void attach(Node node) {
    if (node.graph != null) {
      throw new IllegalStateException(node + " is already in graph '" + node.graph.name() + "'");
    }
    node.graph = this;
    for (Value output : node.outputs) {
      if (output != null) {
        output.owner = this;
      }
    }
    for (Attribute attribute : node.attributes()) {
      for (Graph subgraph : attribute.graphs()) {
        subgraph.ownerNode = node;
      }
    }
    registerUses(node, true);
  }

  /**
   * Adds or removes the uses of {@code node}'s inputs and, recursively, of its subgraphs' nodes and
   * output listings, so a node carrying a body can be removed without leaving uses on outer values.
   */
  private static void registerUses(Node node, boolean add) {
    if (node.usesRegistered != add) {
      for (int i = 0; i < node.inputs.size(); i++) {
        Value input = node.inputs.get(i);
        if (input != null) {
          if (add) {
            input.addUse(node, i);
          } else {
            input.removeUse(node, i);
          }
        }
      }
      node.usesRegistered = add;
    }
    for (Graph subgraph : node.subgraphs()) {
      for (Node inner : subgraph.nodes) {
        registerUses(inner, add);
      }
      for (Value output : subgraph.outputs) {
        long listed = subgraph.outputs.stream().filter(value -> value == output).count();
        long recorded = output.outputOf.stream().filter(graph -> graph == subgraph).count();
        if (add && recorded < listed) {
          output.outputOf.add(subgraph);
        } else if (!add && recorded > 0) {
          output.outputOf.remove(subgraph);
        }
      }
    }
  }

  // ----- traversal and names -----

  /** Visits every node of this graph and of all nested subgraphs, outer node before its subgraphs. */
  public void forEachNode(Consumer<Node> visitor) {
    for (Node node : new ArrayList<>(nodes)) {
      visitor.accept(node);
      for (Graph subgraph : node.subgraphs()) {
        subgraph.forEachNode(visitor);
      }
    }
  }

  /** Node count including nested subgraphs. */
  public int totalNodeCount() {
    int[] count = {0};
    forEachNode(node -> count[0]++);
    return count[0];
  }

  /** A value defined in this graph (input, initializer or node output) with this name, or null. Linear scan. */
  public Value findValue(String valueName) {
    for (Value value : inputs) {
      if (value.name().equals(valueName)) {
        return value;
      }
    }
    for (Value value : initializers) {
      if (value.name().equals(valueName)) {
        return value;
      }
    }
    for (Value value : sparseInitializers) {
      if (value.name().equals(valueName)) {
        return value;
      }
    }
    for (Node node : nodes) {
      for (Value value : node.outputs) {
        if (value != null && value.name().equals(valueName)) {
          return value;
        }
      }
    }
    return null;
  }

  /** The first node with this name, or null. Linear scan (names are for messages and tests). */
  public Node findNode(String nodeName) {
    for (Node node : nodes) {
      if (node.name().equals(nodeName)) {
        return node;
      }
    }
    return null;
  }

  /**
   * A value name not used anywhere in the model this graph belongs to: {@code base} itself if free,
   * otherwise {@code base_1}, {@code base_2}, ... Scans the whole model, so call it for one name; a pass that
   * makes many uses one {@link GraphEditor}.
   */
  public String uniqueName(String base) {
    return new GraphEditor(this).freshValueName(base);
  }

  /** A node name not used anywhere in the model, like {@link #uniqueName}. */
  public String uniqueNodeName(String base) {
    return new GraphEditor(this).freshNodeName(base);
  }

  @Override
  public String toString() {
    return "Graph '" + name + "' (" + nodes.size() + " nodes)";
  }
}
