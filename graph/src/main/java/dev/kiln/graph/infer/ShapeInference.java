package dev.kiln.graph.infer;

import dev.kiln.graph.Attribute;
import dev.kiln.graph.DataType;
import dev.kiln.graph.Graph;
import dev.kiln.graph.Model;
import dev.kiln.graph.Node;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Shape.Dim;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * Shapes, element types and — for the small integer tensors that compute reshape targets — element values of
 * every value in a graph, with symbolic dimensions. Results live in side tables (the graph is not annotated),
 * so inference never changes what a writer emits.
 *
 * <p>Where a rule cannot be decided (an op without a shape function here, a data-dependent size) the answer is
 * null or {@link Shape#UNKNOWN}; callers turn that into a reason, never into a guess.
 */
public final class ShapeInference {
  private final Map<Value, Shape> shapes = new IdentityHashMap<>();
  private final Map<Value, DataType> types = new IdentityHashMap<>();
  private final Map<Value, List<Dim>> elements = new IdentityHashMap<>();
  private final Map<Value, Boolean> visited = new IdentityHashMap<>();
  private final Map<Value, Shape> inputShapes;
  private final Model model;

  private ShapeInference(Model model, Map<Value, Shape> inputShapes) {
    this.model = model;
    this.inputShapes = inputShapes;
  }

  /** Infers the main graph of {@code model} in one pass over its (topologically ordered) nodes. */
  public static ShapeInference of(Model model) {
    return of(model, Map.of());
  }

  /**
   * As {@link #of(Model)}, with the graph inputs in {@code inputShapes} taken at the given shapes instead of the
   * declared ones: concrete sizes give exact propagation at one size, symbolic ones a proof over all of them.
   */
  public static ShapeInference of(Model model, Map<Value, Shape> inputShapes) {
    ShapeInference inference = new ShapeInference(model, new IdentityHashMap<>(inputShapes));
    Graph graph = model.graph();
    for (Node node : graph.nodes()) {
      inference.inferNode(node);
    }
    return inference;
  }

  /** The shape of {@code value}; null when even its rank is unknown. */
  public Shape shape(Value value) {
    if (value == null) {
      return null;
    }
    ensure(value);
    return shapes.get(value);
  }

  /** The element type of {@code value}, or null. */
  public DataType dataType(Value value) {
    if (value == null) {
      return null;
    }
    ensure(value);
    return types.get(value);
  }

  /**
   * The element values of a small integer tensor (rank 0 or 1, at most 64 elements) as dims — numbers or
   * symbols such as "batch" — or null when they are not known. Reshape targets built from
   * Shape → Gather → Unsqueeze → Concat chains are read this way.
   */
  public List<Dim> elements(Value value) {
    if (value == null) {
      return null;
    }
    ensure(value);
    return elements.get(value);
  }

  /** The element values as numbers, when every one is known; else null. */
  public long[] knownElements(Value value) {
    List<Dim> dims = elements(value);
    if (dims == null) {
      return null;
    }
    long[] out = new long[dims.size()];
    for (int i = 0; i < out.length; i++) {
      if (!(dims.get(i) instanceof Shape.Known known)) {
        return null;
      }
      out[i] = known.value();
    }
    return out;
  }

  private void ensure(Value value) {
    if (visited.containsKey(value)) {
      return;
    }
    if (value.producer() == null) {
      leaf(value);
      return;
    }
    // A value made after the initial pass (by a rewrite): infer its producer from its inputs, shallowly.
    Node producer = value.producer();
    for (Value input : producer.inputs()) {
      if (input != null && !visited.containsKey(input)) {
        ensure(input);
      }
    }
    inferNode(producer);
  }

  private void leaf(Value value) {
    visited.put(value, true);
    Tensor constant = value.isGraphInput() ? null : value.initializer();
    if (constant != null) {
      shapes.put(value, constant.shape());
      types.put(value, constant.dataType());
      recordConstantElements(value, constant);
      return;
    }
    Shape given = inputShapes.get(value);
    if (given != null) {
      shapes.put(value, given);
    } else if (value.shape() != null) {
      shapes.put(value, value.shape());
    }
    if (value.dataType() != null) {
      types.put(value, value.dataType());
    }
  }

  private void recordConstantElements(Value value, Tensor tensor) {
    DataType type = tensor.dataType();
    if ((type == DataType.INT64 || type == DataType.INT32) && tensor.dims().length <= 1 && tensor.elementCount() <= 64) {
      List<Dim> dims = new ArrayList<>();
      for (long element : tensor.longs()) {
        dims.add(Shape.known(element));
      }
      elements.put(value, dims);
    }
  }

  private void inferNode(Node node) {
    for (Value input : node.inputs()) {
      if (input != null && !visited.containsKey(input) && input.producer() == null) {
        leaf(input);
      }
    }
    try {
      OpShapes.infer(node, new Access());
    } catch (RuntimeException e) {
      // A malformed attribute or an unexpected input: leave the outputs unknown, a rule will say so.
      if (Boolean.getBoolean("kiln.debugInference")) {
        System.err.println("inference failed at " + node + ": " + e);
      }
    }
    for (Value output : node.outputs()) {
      if (output != null) {
        visited.put(output, true);
        if (!shapes.containsKey(output) && output.shape() != null) {
          shapes.put(output, output.shape());
        }
        if (!types.containsKey(output) && output.dataType() != null) {
          types.put(output, output.dataType());
        }
      }
    }
  }

  /** What the per-op functions read and write. */
  final class Access {
    Shape shape(Value value) {
      return value == null ? null : shapes.get(value);
    }

    DataType type(Value value) {
      return value == null ? null : types.get(value);
    }

    List<Dim> elements(Value value) {
      return value == null ? null : elements.get(value);
    }

    long opset() {
      return model.opsetVersion("");
    }

    void set(Value value, DataType type, Shape shape) {
      if (value == null) {
        return;
      }
      if (type != null) {
        types.put(value, type);
      }
      if (shape != null) {
        shapes.put(value, shape);
      }
    }

    void setElements(Value value, List<Dim> dims) {
      if (value != null && dims != null && dims.size() <= 64) {
        elements.put(value, List.copyOf(dims));
      }
    }

    void constant(Value value, Tensor tensor) {
      set(value, tensor.dataType(), tensor.shape());
      recordConstantElements(value, tensor);
    }

    Tensor attributeTensor(Node node) {
      Attribute attribute = node.attribute("value");
      if (attribute != null) {
        return attribute.asTensor();
      }
      if (node.attribute("value_ints") != null) {
        long[] values = node.attribute("value_ints").asLongs();
        return Tensor.ofLongs(new long[] {values.length}, values);
      }
      if (node.attribute("value_int") != null) {
        return Tensor.ofLongs(new long[0], node.attribute("value_int").asLong());
      }
      if (node.attribute("value_float") != null) {
        return Tensor.ofFloats(new long[0], node.attribute("value_float").asFloat());
      }
      if (node.attribute("value_floats") != null) {
        float[] values = node.attribute("value_floats").asFloats();
        return Tensor.ofFloats(new long[] {values.length}, values);
      }
      return null;
    }
  }
}
