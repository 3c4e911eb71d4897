package dev.kiln.optimizer.passes;

import dev.kiln.graph.DataType;
import dev.kiln.graph.Graph;
import dev.kiln.graph.Model;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.OpType;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import dev.kiln.graph.infer.ShapeInference;
import dev.kiln.optimizer.engine.Constants;
import dev.kiln.optimizer.engine.RewriteDriver;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * Replaces small floating-point arithmetic whose inputs are all known by one initializer: constants, and integer
 * values that shape inference knows exactly (a fixed channel count read through {@code Shape → Slice}). This is
 * how exporters compute attention scales from the graph — torch 2's SDPA:
 * {@code Shape → Slice[-1:] → Cast → Sqrt → Div(1, ·) → Sqrt}; diffusers-style code: {@code Pow(Cast(head_dim), -0.5)}
 * — and the attention fusions need the scale as a constant.
 *
 * <p>Only results of at most {@value #MAX_ELEMENTS} floating-point elements are folded: integer results are shape
 * arithmetic ({@link ShapeConstantFolding}'s job), and nothing that depends on a symbolic size (batch, height) is
 * known, so the model keeps every dynamic axis. Each op is evaluated in double and rounded to its output type, as
 * the runtime would materialize it. Kept apart from the shape folding on purpose: it is a small evaluator over a
 * fixed op list that a general constant evaluator can replace.
 */
public final class ScalarArithmeticFolding implements GraphPass {
  static final int MAX_ELEMENTS = 64;
  private static final Set<OpType> FOLDABLE = Set.of(Onnx.CAST, Onnx.SQRT, Onnx.RECIPROCAL, Onnx.NEG, Onnx.DIV,
      Onnx.MUL, Onnx.ADD, Onnx.SUB, Onnx.POW);

  @Override
  public String name() {
    return "fold-scalar-arithmetic";
  }

  @Override
  public int run(Model model) {
    Graph graph = model.graph();
    ShapeInference shapes = ShapeInference.of(model);
    Set<String> names = new HashSet<>();
    graph.initializers().forEach(value -> names.add(value.name()));
    graph.nodes().forEach(node -> node.outputs().forEach(output -> {
      if (output != null) {
        names.add(output.name());
      }
    }));
    int folded = 0;
    for (Node node : new ArrayList<>(graph.nodes())) {
      if (!FOLDABLE.contains(node.opType()) || node.outputCount() != 1 || node.output() == null
          || node.output().isGraphOutput() || !node.subgraphs().isEmpty()) {
        continue;
      }
      List<Known> inputs = new ArrayList<>();
      for (Value input : node.inputs()) {
        Known known = Known.of(input, shapes);
        if (known == null) {
          break;
        }
        inputs.add(known);
      }
      if (inputs.size() != node.inputCount() || inputs.isEmpty()) {
        continue;
      }
      Known result = evaluate(node, inputs);
      if (result == null || !result.type().isFloatingPoint() || result.values().length > MAX_ELEMENTS) {
        continue;
      }
      String name = node.output().name() + "_folded";
      while (!names.add(name)) {
        name = name + "_";
      }
      // Later nodes of the chain now read an initializer, so one pass in graph order folds whole chains.
      node.output().replaceAllUsesWith(graph.addInitializer(name, result.tensor()));
      folded++;
    }
    if (folded > 0) {
      RewriteDriver.removeDeadNodes(graph);
      RewriteDriver.removeUnusedInitializers(graph);
    }
    return folded;
  }

  /** The op applied to known inputs, or null for a type or broadcast this evaluator does not cover. */
  static Known evaluate(Node node, List<Known> inputs) {
    Known first = inputs.get(0);
    OpType op = node.opType();
    if (op.equals(Onnx.CAST)) {
      DataType to = DataType.fromNumberOrNull((int) node.intAttribute("to", 0));
      return to == null ? null : new Known(to, first.dims(), first.values()).rounded();
    }
    if (!first.type().isFloatingPoint()) {
      return null;
    }
    if (inputs.size() == 1) {
      double[] out = new double[first.values().length];
      for (int i = 0; i < out.length; i++) {
        double x = first.values()[i];
        out[i] = op.equals(Onnx.SQRT) ? Math.sqrt(x) : op.equals(Onnx.RECIPROCAL) ? 1.0 / x : -x;
      }
      return new Known(first.type(), first.dims(), out).rounded();
    }
    Known second = inputs.get(1);
    // Pow may take an integer exponent; the other binary ops need one element type on both sides.
    if (!op.equals(Onnx.POW) && second.type() != first.type()) {
      return null;
    }
    long[] dims = broadcast(first, second);
    if (dims == null) {
      return null;
    }
    int count = Math.max(first.values().length, second.values().length);
    double[] out = new double[count];
    for (int i = 0; i < count; i++) {
      double a = first.values()[first.values().length == 1 ? 0 : i];
      double b = second.values()[second.values().length == 1 ? 0 : i];
      out[i] = op.equals(Onnx.DIV) ? a / b : op.equals(Onnx.MUL) ? a * b : op.equals(Onnx.ADD) ? a + b
          : op.equals(Onnx.SUB) ? a - b : Math.pow(a, b);
    }
    return new Known(first.type(), dims, out).rounded();
  }

  /** Result dims when the shapes are equal or one side has one element (any rank); else null. */
  private static long[] broadcast(Known a, Known b) {
    if (java.util.Arrays.equals(a.dims(), b.dims())) {
      return a.dims();
    }
    if (a.values().length != 1 && b.values().length != 1) {
      return null;
    }
    Known single = a.values().length == 1 ? a : b;
    Known other = single == a ? b : a;
    if (other.dims().length >= single.dims().length) {
      return other.dims();
    }
    // [] op [1,1] is [1,1]; [1] op [1,1] likewise: the higher rank of two one-element shapes wins.
    return other.values().length == 1 ? single.dims() : null;
  }

  /** A small tensor whose every element is known, with its element type. */
  record Known(DataType type, long[] dims, double[] values) {
    static Known of(Value value, ShapeInference shapes) {
      if (value == null) {
        return null;
      }
      Tensor tensor = Constants.tensor(value);
      if (tensor != null) {
        DataType type = tensor.dataType();
        boolean numeric = type == DataType.FLOAT || type == DataType.DOUBLE || type == DataType.FLOAT16
            || type == DataType.INT64 || type == DataType.INT32;
        return numeric && tensor.elementCount() <= MAX_ELEMENTS ? new Known(type, tensor.dims(), tensor.doubles()) : null;
      }
      DataType type = shapes.dataType(value);
      if (type != DataType.INT64 && type != DataType.INT32) {
        return null;
      }
      long[] elements = shapes.knownElements(value);
      Shape shape = shapes.shape(value);
      if (elements == null || shape == null || shape.rank() > 1 || !shape.isFullyKnown()
          || shape.elementCount() != elements.length) {
        return null;
      }
      double[] values = new double[elements.length];
      for (int i = 0; i < values.length; i++) {
        values[i] = elements[i];
      }
      return new Known(type, shape.sizes(), values);
    }

    /** The values as the output type stores them (float32 rounding, integer truncation as Cast does). */
    Known rounded() {
      double[] out = values.clone();
      for (int i = 0; i < out.length; i++) {
        out[i] = switch (type) {
          case FLOAT, FLOAT16 -> (float) out[i];
          case INT64, INT32 -> (double) (long) out[i];
          default -> out[i];
        };
      }
      return new Known(type, dims, out);
    }

    Tensor tensor() {
      return switch (type) {
        case FLOAT -> {
          float[] floats = new float[values.length];
          for (int i = 0; i < floats.length; i++) {
            floats[i] = (float) values[i];
          }
          yield Tensor.ofFloats(dims, floats);
        }
        case FLOAT16 -> {
          float[] floats = new float[values.length];
          for (int i = 0; i < floats.length; i++) {
            floats[i] = (float) values[i];
          }
          yield Tensor.ofFloat16(dims, floats);
        }
        case DOUBLE -> Tensor.ofDoubles(dims, values);
        default -> throw new IllegalStateException("only floating-point results are folded, not " + type);
      };
    }
  }
}
