package dev.kiln.exporter.lowering;

import dev.kiln.graph.Attribute;
import dev.kiln.graph.DataType;
import dev.kiln.graph.Graph;
import dev.kiln.graph.Node;
import dev.kiln.graph.OpType;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The one place lowerings add nodes: fresh value names, node names from the current module scope (torch's
 * {@code /down_blocks.1/attentions.0/Add_1}), constants, and cached {@code Shape}/{@code Gather} reads of dims.
 */
public final class Emitter {
  private final Graph graph;
  private final int opset;
  private final Set<String> valueNames = new HashSet<>();
  private final Map<String, Integer> nodeNameCounts = new HashMap<>();
  private final Map<Value, Value> shapes = new HashMap<>();
  private final Map<String, SymbolicInt> dims = new HashMap<>();
  private final BakedConstants bakedConstants;
  private List<String> scope = List.of();

  public Emitter(Graph graph, int opset) {
    this(graph, opset, BakedConstants.none());
  }

  public Emitter(Graph graph, int opset, BakedConstants bakedConstants) {
    this.graph = graph;
    this.opset = opset;
    this.bakedConstants = bakedConstants;
  }

  public BakedConstants bakedConstants() {
    return bakedConstants;
  }

  public Graph graph() {
    return graph;
  }

  public int opset() {
    return opset;
  }

  public List<String> scope() {
    return scope;
  }

  /** Sets the module scope for the nodes that follow; returns the previous one. */
  public List<String> enterScope(List<String> next) {
    List<String> previous = scope;
    scope = next;
    return previous;
  }

  public String reserveName(String base) {
    String name = base;
    int suffix = 0;
    while (!valueNames.add(name)) {
      suffix++;
      name = base + "_" + suffix;
    }
    return name;
  }

  public Value op(OpType type, List<Value> inputs, Attribute... attributes) {
    return op(type, inputs, 1, attributes).get(0);
  }

  public Value op(OpType type, Value input, Attribute... attributes) {
    return op(type, List.of(input), attributes);
  }

  public List<Value> op(OpType type, List<Value> inputs, int outputs, Attribute... attributes) {
    String prefix = scope.isEmpty() ? "/" : "/" + String.join("/", scope) + "/";
    String base = prefix + type.name();
    int count = nodeNameCounts.merge(base, 1, Integer::sum);
    String nodeName = count == 1 ? base : base + "_" + (count - 1);
    List<String> names = new ArrayList<>();
    for (int index = 0; index < outputs; index++) {
      names.add(reserveName(nodeName + "_output_" + index));
    }
    Node node = new Node(type, nodeName, inputs, names);
    for (Attribute attribute : attributes) {
      node.setAttribute(attribute);
    }
    graph.append(node);
    return node.outputs();
  }

  /** A Constant node holding {@code values} as {@code type} (only numeric types). */
  public Value constant(DataType type, long[] shape, double[] values) {
    return op(Onnx.CONSTANT, List.of(), Attribute.ofTensor("value", tensor(type, shape, values)));
  }

  public Value constantLongs(long... values) {
    return constant(DataType.INT64, new long[] {values.length}, Arrays.stream(values).asDoubleStream().toArray());
  }

  public Value scalarLong(long value) {
    return constant(DataType.INT64, new long[0], new double[] {value});
  }

  public Value scalarFloat(DataType type, double value) {
    return constant(type, new long[0], new double[] {value});
  }

  static Tensor tensor(DataType type, long[] shape, double[] values) {
    return switch (type) {
      case FLOAT -> {
        float[] floats = new float[values.length];
        for (int index = 0; index < values.length; index++) {
          floats[index] = (float) values[index];
        }
        yield Tensor.ofFloats(shape, floats);
      }
      case DOUBLE -> Tensor.ofDoubles(shape, values);
      case INT64 -> Tensor.ofLongs(shape, Arrays.stream(values).mapToLong(value -> (long) value).toArray());
      case INT32 -> Tensor.ofInts(shape, Arrays.stream(values).mapToInt(value -> (int) value).toArray());
      case FLOAT16 -> {
        float[] floats = new float[values.length];
        for (int index = 0; index < values.length; index++) {
          floats[index] = (float) values[index];
        }
        yield Tensor.ofFloat16(shape, floats);
      }
      case BOOL, UINT8, INT8 -> {
        ByteBuffer bytes = ByteBuffer.allocate(values.length).order(ByteOrder.LITTLE_ENDIAN);
        for (double value : values) {
          bytes.put((byte) (type == DataType.BOOL ? (value != 0 ? 1 : 0) : (long) value));
        }
        yield Tensor.ofBytes(type, shape, bytes.flip());
      }
      default -> throw new LoweringException("constants of type " + type + " are not supported");
    };
  }

  /** {@code Shape(x)}, once per value. */
  public Value shapeOf(Value value) {
    return shapes.computeIfAbsent(value, key -> op(Onnx.SHAPE, key));
  }

  /** {@code Gather(Shape(x), dim)}: a 0-d INT64, once per value and dim. */
  public SymbolicInt dim(Value value, int dim, String origin) {
    String key = value.name() + "#" + dim;
    SymbolicInt known = dims.get(key);
    if (known != null) {
      return known;
    }
    Value size = op(Onnx.GATHER, List.of(shapeOf(value), scalarLong(dim)), Attribute.ofInt("axis", 0));
    SymbolicInt result = new SymbolicInt(size, origin);
    dims.put(key, result);
    return result;
  }
}
