package dev.kiln.validator.lowering;

import dev.kiln.common.KilnException;
import dev.kiln.graph.Attribute;
import dev.kiln.graph.DataType;
import dev.kiln.graph.Graph;
import dev.kiln.graph.GraphEditor;
import dev.kiln.graph.Model;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.OpType;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import dev.kiln.graph.infer.ShapeInference;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * Builds the standard-ONNX nodes that replace one contrib node, inserting each right before it, so the graph
 * stays topologically ordered. It knows which operator-set version the model imports and spells axes the way
 * that version wants (ReduceMean axes became an input in opset 18; Unsqueeze and Split inputs in 13).
 *
 * <p>New nodes are named under the replaced node's name ({@code /mid_block/GroupNorm/ReduceMean}), so error
 * messages and profiles still point at the module the node came from.
 */
final class Emitter {
  private final Model model;
  private final Graph graph;
  private final ShapeInference shapes;
  private final long opset;
  private final GraphEditor editor;
  private Node anchor;
  private String scope = "";

  Emitter(Model model, ShapeInference shapes) {
    this.model = model;
    this.graph = model.graph();
    this.shapes = shapes;
    this.opset = model.opsetVersion("");
    if (opset < 11) {
      throw new KilnException.Unsupported("lowering needs default-domain opset 11 or newer; the model imports "
          + opset);
    }
    this.editor = new GraphEditor(graph);
  }

  /** Starts emitting the replacement of {@code node}: new nodes go right before it, named under its name. */
  void startAt(Node node) {
    this.anchor = node;
    String name = node.name() == null || node.name().isEmpty() ? node.opType().name() : node.name();
    this.scope = name + "/";
  }

  GraphEditor editor() {
    return editor;
  }

  Model model() {
    return model;
  }

  long opset() {
    return opset;
  }

  /** Inferred shape, or null when even the rank is unknown. */
  Shape shape(Value value) {
    Shape inferred = shapes.shape(value);
    return inferred != null ? inferred : value.shape();
  }

  DataType dataType(Value value) {
    DataType inferred = shapes.dataType(value);
    if (inferred != null) {
      return inferred;
    }
    DataType declared = value.dataType();
    if (declared == null) {
      throw failure("cannot tell the element type of input '" + value.name() + "'");
    }
    return declared;
  }

  /** The rank of {@code value}, or an Unsupported failure naming what was being lowered. */
  int rank(Value value, String role) {
    Shape shape = shape(value);
    if (shape == null) {
      throw failure("the rank of " + role + " '" + value.name() + "' is unknown to shape inference");
    }
    return shape.rank();
  }

  /** A KilnException.Unsupported naming the node being lowered. */
  KilnException failure(String why) {
    return new KilnException.Unsupported("cannot lower " + anchor.opType().key() + " node '" + anchor.name() + "': "
        + why);
  }

  /** A single-output node. */
  Value op(OpType type, List<Value> inputs, Attribute... attributes) {
    return ops(type, 1, inputs, attributes).get(0);
  }

  Value op(OpType type, Value input, Attribute... attributes) {
    return op(type, Arrays.asList(input), attributes);
  }

  Value op(OpType type, Value left, Value right) {
    return op(type, Arrays.asList(left, right));
  }

  List<Value> ops(OpType type, int outputCount, List<Value> inputs, Attribute... attributes) {
    Node node = editor.newNode(type, scope + type.name(), inputs, outputCount, attributes);
    editor.insertBefore(anchor, node);
    return node.outputs();
  }

  /** An int64 vector initializer (shapes, axes, split sizes). */
  Value longs(String hint, long... values) {
    return editor.addInitializer(scope + hint, Tensor.ofLongs(new long[] {values.length}, values));
  }

  /** A scalar initializer of {@code type} (FLOAT or DOUBLE: the types lowerings compute in). */
  Value scalar(String hint, DataType type, double value) {
    Tensor tensor = switch (type) {
      case FLOAT -> Tensor.ofFloats(new long[0], (float) value);
      case DOUBLE -> Tensor.ofDoubles(new long[0], value);
      default -> throw new IllegalArgumentException("lowerings compute in FLOAT or DOUBLE, not " + type);
    };
    return editor.addInitializer(scope + hint, tensor);
  }

  /** {@code value} cast to {@code type}, or itself when it already has that type. */
  Value castTo(Value value, DataType type) {
    if (dataType(value) == type) {
      return value;
    }
    return op(Onnx.CAST, value, Attribute.ofInt("to", type.number()));
  }

  /**
   * The type a lowering computes in for inputs of {@code type}: half types widen to FLOAT (ORT's CUDA kernels
   * accumulate in float too, and fp16 epsilon or erf would lose the comparison before it starts).
   */
  static DataType computeType(DataType type) {
    return type == DataType.DOUBLE ? DataType.DOUBLE : DataType.FLOAT;
  }

  Value reduceMean(Value input, long... axes) {
    if (opset >= 18) {
      return op(Onnx.REDUCE_MEAN, List.of(input, longs("axes", axes)), Attribute.ofInt("keepdims", 1));
    }
    return op(Onnx.REDUCE_MEAN, List.of(input), Attribute.ofInts("axes", axes), Attribute.ofInt("keepdims", 1));
  }

  Value unsqueeze(Value input, long... axes) {
    if (opset >= 13) {
      return op(Onnx.UNSQUEEZE, List.of(input, longs("axes", axes)));
    }
    return op(Onnx.UNSQUEEZE, List.of(input), Attribute.ofInts("axes", axes));
  }

  List<Value> split(Value input, long axis, long... sizes) {
    if (opset >= 13) {
      return ops(Onnx.SPLIT, sizes.length, List.of(input, longs("split", sizes)), Attribute.ofInt("axis", axis));
    }
    return ops(Onnx.SPLIT, sizes.length, List.of(input), Attribute.ofInt("axis", axis),
        Attribute.ofInts("split", sizes));
  }

  Value reshape(Value input, long... target) {
    return op(Onnx.RESHAPE, input, longs("shape", target));
  }

  Value transpose(Value input, long... permutation) {
    return op(Onnx.TRANSPOSE, List.of(input), Attribute.ofInts("perm", permutation));
  }
}
