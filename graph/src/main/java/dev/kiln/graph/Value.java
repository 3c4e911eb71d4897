package dev.kiln.graph;

import dev.kiln.common.Printable;
import dev.kiln.graph.proto.OnnxProto.SparseTensorProto;
import dev.kiln.graph.proto.OnnxProto.TypeProto;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * An SSA value: produced by exactly one node output, or a graph input, or an initializer (a value may be
 * both a graph input and an initializer, the old IR-3 way of giving an input a default). It knows its
 * producer and every use; the lists change only through the mutation methods of {@link Node},
 * {@link Graph} and {@link #replaceAllUsesWith}, which keep them right.
 */
public final class Value {
  private String name;
  private DataType dataType;
  private Shape shape;
  private TypeProto nonTensorType;
  Node producer;
  int producerIndex = -1;
  Graph owner;
  Tensor initializer;
  SparseTensorProto sparseInitializer;
  final List<Use> uses = new ArrayList<>();
  /** Graphs listing this value among their outputs, once per listing. */
  final List<Graph> outputOf = new ArrayList<>();
  /** The type as read, so the writer can reuse the file's ValueInfoProtos while it is unchanged. */
  TypeInfo readType;

  /** Remembers the current type as the one read from the file. */
  void keepReadType() {
    readType = TypeInfo.of(this);
  }

  /** A fresh value with unknown type; it becomes part of a graph when its producer is inserted. */
  public Value(String name) {
    this.name = name;
  }

  public Value(String name, DataType dataType, Shape shape) {
    this.name = name;
    this.dataType = dataType;
    this.shape = shape;
  }

  public String name() {
    return name;
  }

  public void setName(String name) {
    this.name = name;
  }

  /** Element type of a tensor value; for an initializer without recorded type, its tensor's; null if unknown. */
  public DataType dataType() {
    if (dataType == null && initializer != null) {
      return initializer.dataType();
    }
    return dataType;
  }

  /** Shape of a tensor value; for an initializer without recorded shape, its tensor's; null if unknown rank. */
  public Shape shape() {
    if (shape == null && initializer != null && dataType == null) {
      return initializer.shape();
    }
    return shape;
  }

  /** Type recorded on this value itself (not derived from its initializer). */
  DataType recordedDataType() {
    return dataType;
  }

  Shape recordedShape() {
    return shape;
  }

  public void setType(DataType dataType, Shape shape) {
    this.dataType = dataType;
    this.shape = shape;
    this.nonTensorType = null;
  }

  /** For sequence, map, optional and sparse-tensor values: their full ONNX type (for the writer); null for tensors. */
  TypeProto nonTensorType() {
    return nonTensorType;
  }

  /** What a non-tensor value is ("sequence", "map", "optional", "sparse_tensor", "opaque"); null for tensors. */
  public String nonTensorKind() {
    return nonTensorType == null ? null
        : nonTensorType.getValueCase().name().toLowerCase(java.util.Locale.ROOT).replace("_type", "");
  }

  void setNonTensorType(TypeProto type) {
    this.nonTensorType = type;
    this.dataType = null;
    this.shape = null;
  }

  /** The node producing this value, or null for graph inputs and initializers. */
  public Node producer() {
    return producer;
  }

  /** Which output of {@link #producer()} this is; -1 when there is no producer. */
  public int producerIndex() {
    return producerIndex;
  }

  /** The graph this value is defined in (its producer's graph, or the graph it is an input or initializer of). */
  public Graph graph() {
    return producer != null ? producer.graph() : owner;
  }

  public List<Use> uses() {
    return Collections.unmodifiableList(uses);
  }

  public boolean hasUses() {
    return !uses.isEmpty();
  }

  /** True when some graph lists this value as an output. */
  public boolean isGraphOutput() {
    return !outputOf.isEmpty();
  }

  /** Uses plus graph-output listings: zero means nothing needs this value. */
  public int consumerCount() {
    return uses.size() + outputOf.size();
  }

  public boolean isInitializer() {
    return initializer != null || sparseInitializer != null;
  }

  /** The constant data of an initializer, or null. */
  public Tensor initializer() {
    return initializer;
  }

  /** The sparse constant of a sparse initializer, kept in its ONNX form for the writer; or null. */
  SparseTensorProto sparseInitializer() {
    return sparseInitializer;
  }

  /**
   * What a sparse initializer holds: its dense dims, how many values it stores, and its encoded size; null for
   * other values.
   */
  public SparseInfo sparseInfo() {
    if (sparseInitializer == null) {
      return null;
    }
    var values = sparseInitializer.getValues();
    return new SparseInfo(List.copyOf(sparseInitializer.getDimsList()), values.getDimsCount() == 0 ? 0 : values.getDims(0),
        sparseInitializer.getSerializedSize());
  }

  /** See {@link #sparseInfo()}. */
  public record SparseInfo(List<Long> dims, long storedValues, long encodedBytes) {}

  /** Replaces the data of an initializer (e.g. after converting it to fp16). */
  public void setInitializer(Tensor tensor) {
    if (initializer == null) {
      throw new IllegalStateException("value '" + name + "' is not an initializer; use Graph.addInitializer");
    }
    this.initializer = tensor;
  }

  public boolean isGraphInput() {
    return owner != null && owner.inputs.contains(this);
  }

  /**
   * Makes every consumer of this value consume {@code replacement} instead: node inputs (in this graph and
   * in subgraphs that capture it) and graph-output listings. Output names follow the replacement's name,
   * so rename the replacement first when the model's interface must keep this value's name. Uses by the
   * replacement's own producer are left alone: a node consuming its own output is never meant (this is the
   * "wrap a value" case: {@code y = Cast(x); x.replaceAllUsesWith(y)} keeps Cast reading x).
   */
  public void replaceAllUsesWith(Value replacement) {
    if (replacement == this) {
      return;
    }
    for (Use use : new ArrayList<>(uses)) {
      if (use.node() != replacement.producer()) {
        use.node().setInput(use.inputIndex(), replacement);
      }
    }
    for (Graph graph : new ArrayList<>(outputOf)) {
      for (int i = 0; i < graph.outputs.size(); i++) {
        if (graph.outputs.get(i) == this) {
          graph.setOutput(i, replacement);
        }
      }
    }
  }

  void addUse(Node node, int index) {
    uses.add(new Use(node, index));
  }

  void removeUse(Node node, int index) {
    for (int i = 0; i < uses.size(); i++) {
      Use use = uses.get(i);
      if (use.node() == node && use.inputIndex() == index) {
        uses.remove(i);
        return;
      }
    }
    throw new IllegalStateException("value '" + name + "' has no use at input " + index + " of " + node);
  }

  @Override
  public String toString() {
    return "%" + Printable.name(name);
  }
}
