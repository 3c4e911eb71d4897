package dev.kiln.graph;

import dev.kiln.graph.proto.OnnxProto.NodeProto;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One operator application. Inputs are value references (null for an omitted optional input); outputs
 * are values this node produces (null for an omitted optional output). A node is detached until a
 * {@link Graph} inserts it; only then do its inputs record it as a use.
 */
public final class Node {
  private OpType opType;
  private String name;
  final List<Value> inputs = new ArrayList<>();
  final List<Value> outputs = new ArrayList<>();
  private final List<Attribute> attributes = new ArrayList<>();
  private String docString = "";
  private String overload = "";
  private final Map<String, String> metadata = new LinkedHashMap<>();
  Graph graph;
  /** Whether this node's inputs are recorded as uses (true while it sits in a graph that is part of a model). */
  boolean usesRegistered;
  /** What the reader saw (name/domain spelling, doc string, device configuration, unknown fields). */
  NodeProto original;

  /**
   * A detached node with fresh output values named {@code outputNames} (null or "" for an omitted output).
   */
  public Node(OpType opType, String name, List<Value> inputs, List<String> outputNames) {
    this.opType = opType;
    this.name = name == null ? "" : name;
    this.inputs.addAll(inputs);
    for (String outputName : outputNames) {
      addOutputValue(outputName == null || outputName.isEmpty() ? null : new Value(outputName));
    }
  }

  /** A detached node with one fresh output. */
  public static Node create(OpType opType, String name, List<Value> inputs, String outputName) {
    return new Node(opType, name, inputs, List.of(outputName));
  }

  /** Keeps what the reader saw (name/domain spelling, doc string, device configuration, unknown fields). */
  void keepResidue(NodeProto residue) {
    this.original = residue;
  }

  void addOutputValue(Value value) {
    if (value != null) {
      if (value.producer != null) {
        throw new IllegalStateException("value '" + value.name() + "' is already produced by " + value.producer);
      }
      value.producer = this;
      value.producerIndex = outputs.size();
    }
    outputs.add(value);
  }

  public OpType opType() {
    return opType;
  }

  /** Retargets the node to another operator (e.g. a contrib op with the same inputs). */
  public void setOpType(OpType opType) {
    this.opType = opType;
  }

  public boolean is(OpType type) {
    return opType.equals(type);
  }

  public String name() {
    return name;
  }

  public void setName(String name) {
    this.name = name == null ? "" : name;
  }

  public Graph graph() {
    return graph;
  }

  public List<Value> inputs() {
    return Collections.unmodifiableList(inputs);
  }

  public int inputCount() {
    return inputs.size();
  }

  /** Input {@code index}, or null when it is omitted or beyond the listed inputs. */
  public Value input(int index) {
    return index < inputs.size() ? inputs.get(index) : null;
  }

  public List<Value> outputs() {
    return Collections.unmodifiableList(outputs);
  }

  public int outputCount() {
    return outputs.size();
  }

  public Value output(int index) {
    return index < outputs.size() ? outputs.get(index) : null;
  }

  /** The single output of a one-output node. */
  public Value output() {
    if (outputs.size() != 1) {
      throw new IllegalStateException(this + " has " + outputs.size() + " outputs");
    }
    return outputs.get(0);
  }

  /** Sets input {@code index} (extending the list with omitted inputs if needed), keeping use lists right. */
  public void setInput(int index, Value value) {
    while (inputs.size() <= index) {
      inputs.add(null);
    }
    Value previous = inputs.get(index);
    if (previous == value) {
      return;
    }
    if (usesRegistered && previous != null) {
      previous.removeUse(this, index);
    }
    inputs.set(index, value);
    if (usesRegistered && value != null) {
      value.addUse(this, index);
    }
  }

  public void addInput(Value value) {
    setInput(inputs.size(), value);
  }

  /** Drops trailing inputs from {@code count} on (trailing optional inputs), keeping use lists right. */
  public void truncateInputs(int count) {
    while (inputs.size() > count) {
      setInput(inputs.size() - 1, null);
      inputs.remove(inputs.size() - 1);
    }
  }

  /** Adds a fresh output value named {@code outputName}. */
  public Value addOutput(String outputName) {
    Value value = new Value(outputName);
    addOutputValue(value);
    if (graph != null) {
      value.owner = graph;
    }
    return value;
  }

  public List<Attribute> attributes() {
    return Collections.unmodifiableList(attributes);
  }

  /** The attribute called {@code name}, or null. */
  public Attribute attribute(String name) {
    for (Attribute attribute : attributes) {
      if (attribute.name().equals(name)) {
        return attribute;
      }
    }
    return null;
  }

  public boolean hasAttribute(String name) {
    return attribute(name) != null;
  }

  public long intAttribute(String name, long fallback) {
    Attribute attribute = attribute(name);
    return attribute == null ? fallback : attribute.asLong();
  }

  public float floatAttribute(String name, float fallback) {
    Attribute attribute = attribute(name);
    return attribute == null ? fallback : attribute.asFloat();
  }

  /** Replaces the attribute of the same name in place, or appends it. */
  public void setAttribute(Attribute attribute) {
    for (int i = 0; i < attributes.size(); i++) {
      if (attributes.get(i).name().equals(attribute.name())) {
        detachGraphs(attributes.get(i));
        attributes.set(i, attribute);
        attachGraphs(attribute);
        return;
      }
    }
    attributes.add(attribute);
    attachGraphs(attribute);
  }

  public boolean removeAttribute(String name) {
    for (int i = 0; i < attributes.size(); i++) {
      if (attributes.get(i).name().equals(name)) {
        detachGraphs(attributes.remove(i));
        return true;
      }
    }
    return false;
  }

  private void attachGraphs(Attribute attribute) {
    for (Graph subgraph : attribute.graphs()) {
      subgraph.ownerNode = this;
    }
  }

  private void detachGraphs(Attribute attribute) {
    for (Graph subgraph : attribute.graphs()) {
      subgraph.ownerNode = null;
    }
  }

  /** Subgraphs held by this node's attributes (If branches, Loop/Scan bodies), in attribute order. */
  public List<Graph> subgraphs() {
    List<Graph> subgraphs = new ArrayList<>();
    for (Attribute attribute : attributes) {
      subgraphs.addAll(attribute.graphs());
    }
    return subgraphs;
  }

  public String docString() {
    return docString;
  }

  public void setDocString(String docString) {
    this.docString = docString == null ? "" : docString;
  }

  /** Model-local function overload this node calls (IR 10); "" when none. */
  public String overload() {
    return overload;
  }

  public void setOverload(String overload) {
    this.overload = overload == null ? "" : overload;
  }

  /** metadata_props of the node (IR 10), in file order; mutable. */
  public Map<String, String> metadata() {
    return metadata;
  }

  @Override
  public String toString() {
    return opType.key() + (name.isEmpty() ? "" : " '" + name + "'");
  }
}
