package dev.kiln.optimizer.fusions;

import dev.kiln.graph.Attribute;
import dev.kiln.graph.DataType;
import dev.kiln.graph.Graph;
import dev.kiln.graph.Model;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.OpType;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

/**
 * Small graphs in exactly the form torch 1.13's exporter writes the SD modules (REFERENCE §4): Constant nodes
 * for InstanceNormalization's ones/zeros and reshape targets, [C,1,1] affine initializers, Shape/Gather/Div
 * chains for GEGLU's slice bounds, linear biases as the first Add operand. Dims batch/height/width/sequence
 * are symbolic, as in the fixtures' dynamic axes.
 */
final class Sites {
  private final Graph graph = new Graph("site");
  private final Random random;
  private int counter;

  Sites(long seed) {
    this.random = new Random(seed);
  }

  static Shape.Dim batch() {
    return Shape.symbolic("batch");
  }

  Value input(String name, Shape.Dim... dims) {
    return graph.addInput(name, DataType.FLOAT, Shape.of(dims));
  }

  Value weight(String name, long... dims) {
    float[] values = new float[Math.toIntExact(Arrays.stream(dims).reduce(1, (a, b) -> a * b))];
    for (int i = 0; i < values.length; i++) {
      values[i] = (float) (random.nextGaussian() * 0.5);
    }
    return graph.addInitializer(name, Tensor.ofFloats(dims, values));
  }

  Value weight(String name, long[] dims, float[] values) {
    return graph.addInitializer(name, Tensor.ofFloats(dims, values));
  }

  /** A Constant node, as torch emits for small tensors. */
  Value constant(String scope, Tensor value) {
    return op(Onnx.CONSTANT, scope, List.of(), Attribute.ofTensor("value", value));
  }

  Value longs(String scope, long... values) {
    return constant(scope, Tensor.ofLongs(values.length == 1 ? new long[0] : new long[] {values.length}, values));
  }

  Value longVector(String scope, long... values) {
    return constant(scope, Tensor.ofLongs(new long[] {values.length}, values));
  }

  Value scalar(String scope, float value) {
    return constant(scope, Tensor.ofFloats(new long[0], value));
  }

  Value op(OpType type, String scope, List<Value> inputs, Attribute... attributes) {
    String name = scope + "/" + type.name() + "_" + counter++;
    Node node = Node.create(type, name, inputs, name + "_output_0");
    for (Attribute attribute : attributes) {
      node.setAttribute(attribute);
    }
    graph.append(node);
    return node.output();
  }

  Value op(OpType type, String scope, Value... inputs) {
    return op(type, scope, Arrays.asList(inputs));
  }

  Model model(Value... outputs) {
    for (Value output : outputs) {
      output.setType(DataType.FLOAT, null);
      graph.addOutput(output);
    }
    Model model = new Model(8, graph);
    model.opsetImports().put("", 17L);
    return model;
  }

  /** torch's GroupNorm export, optionally with SiLU. {@code instanceScale} lets a negative test spoil the ones. */
  Value groupNorm(String scope, Value x, int channels, int groups, boolean silu, float instanceScale) {
    Value grouped = op(Onnx.RESHAPE, scope, x, longVector(scope, 0, groups, -1));
    float[] ones = new float[groups];
    Arrays.fill(ones, instanceScale);
    Value normalized = op(Onnx.INSTANCE_NORMALIZATION, scope,
        List.of(grouped, constant(scope, Tensor.ofFloats(new long[] {groups}, ones)),
            constant(scope, Tensor.ofFloats(new long[] {groups}, new float[groups]))),
        Attribute.ofFloat("epsilon", 1e-5f));
    Value restored = op(Onnx.RESHAPE, scope, normalized, op(Onnx.SHAPE, scope, x));
    Value scaled = op(Onnx.MUL, scope, restored, weight(scope + ".weight", channels, 1, 1));
    Value shifted = op(Onnx.ADD, scope, scaled, weight(scope + ".bias", channels, 1, 1));
    return silu ? op(Onnx.MUL, scope, shifted, op(Onnx.SIGMOID, scope, shifted)) : shifted;
  }

  Value conv(String scope, Value x, int in, int out, int kernel) {
    int pad = kernel / 2;
    return op(Onnx.CONV, scope,
        List.of(x, weight(scope + ".weight", out, in, kernel, kernel), weight(scope + ".bias", out)),
        Attribute.ofInts("kernel_shape", kernel, kernel), Attribute.ofInts("pads", pad, pad, pad, pad),
        Attribute.ofInts("strides", 1, 1), Attribute.ofInts("dilations", 1, 1), Attribute.ofInt("group", 1));
  }

  /** A linear layer on a 3-D input: MatMul then Add(bias, ·), the bias first as torch writes it. */
  Value linear(String scope, Value x, int in, int out) {
    Value product = op(Onnx.MAT_MUL, scope, x, weight(scope + ".weight", in, out));
    return op(Onnx.ADD, scope, weight(scope + ".bias", out), product);
  }

  /**
   * GEGLU: proj, then chunk(2, -1) with bounds computed from Shape → Gather → Add(1) → Div(divisor) → Mul, then
   * hidden * gelu(gate) with Gelu as Div(√2) → Erf → Add(1) → Mul → Mul(0.5).
   */
  Value geglu(String scope, Value x, int in, int hidden, long divisor) {
    Value projected = linear(scope + "/proj", x, in, 2 * hidden);
    // torch gathers the last dim with a [1]-shaped index, and reuses that constant as the Slice axes.
    Value last = longVector(scope, -1);
    Value size = op(Onnx.GATHER, scope, List.of(op(Onnx.SHAPE, scope, projected), last), Attribute.ofInt("axis", 0));
    Value half = op(Onnx.DIV, scope, op(Onnx.ADD, scope, size, longs(scope, 1)), longs(scope, divisor));
    Value end = op(Onnx.MUL, scope, half, longs(scope, 1));
    Value whole = op(Onnx.MUL, scope, half, longs(scope, 2));
    Value left = op(Onnx.SLICE, scope, projected, longVector(scope, 0), end, last);
    Value right = op(Onnx.SLICE, scope, projected, end, whole, last);
    Value erf = op(Onnx.ERF, scope, op(Onnx.DIV, scope, right, scalar(scope, (float) Math.sqrt(2))));
    Value gelu = op(Onnx.MUL, scope, op(Onnx.MUL, scope, right, op(Onnx.ADD, scope, erf, scalar(scope, 1f))),
        scalar(scope, 0.5f));
    return op(Onnx.MUL, scope, left, gelu);
  }
}
