package dev.kiln.exporter.lowering;

import dev.kiln.graph.Onnx;
import java.util.Map;
import java.util.TreeMap;

/** Every aten op the exporter lowers, by its name in traced code ({@code torch.<name>}). */
public final class AtenOps {
  private AtenOps() {}

  private static final Map<String, Lowering> LOWERINGS = new TreeMap<>();

  static {
    LOWERINGS.put("add", ElementwiseLowerings::add);
    LOWERINGS.put("sub", ElementwiseLowerings::sub);
    LOWERINGS.put("mul", ElementwiseLowerings::mul);
    LOWERINGS.put("div", ElementwiseLowerings::div);
    LOWERINGS.put("floor_divide", ElementwiseLowerings::floorDivide);
    LOWERINGS.put("pow", ElementwiseLowerings::pow);
    LOWERINGS.put("lt", (arguments, emitter) -> ElementwiseLowerings.compare(Onnx.LESS, arguments, emitter));
    LOWERINGS.put("gt", (arguments, emitter) -> ElementwiseLowerings.compare(Onnx.GREATER, arguments, emitter));
    LOWERINGS.put("eq", (arguments, emitter) -> ElementwiseLowerings.compare(Onnx.EQUAL, arguments, emitter));
    LOWERINGS.put("neg", (arguments, emitter) -> ElementwiseLowerings.unary(Onnx.NEG, arguments, emitter));
    LOWERINGS.put("sqrt", (arguments, emitter) -> ElementwiseLowerings.unary(Onnx.SQRT, Math::sqrt, arguments, emitter));
    LOWERINGS.put("exp", (arguments, emitter) -> ElementwiseLowerings.unary(Onnx.EXP, Math::exp, arguments, emitter));
    LOWERINGS.put("sin", (arguments, emitter) -> ElementwiseLowerings.unary(Onnx.SIN, Math::sin, arguments, emitter));
    LOWERINGS.put("cos", (arguments, emitter) -> ElementwiseLowerings.unary(Onnx.COS, Math::cos, arguments, emitter));
    LOWERINGS.put("tanh", (arguments, emitter) -> ElementwiseLowerings.unary(Onnx.TANH, arguments, emitter));
    LOWERINGS.put("sigmoid", (arguments, emitter) -> ElementwiseLowerings.unary(Onnx.SIGMOID, arguments, emitter));
    LOWERINGS.put("relu", (arguments, emitter) -> ElementwiseLowerings.unary(Onnx.RELU, arguments, emitter));
    LOWERINGS.put("silu", ElementwiseLowerings::silu);
    LOWERINGS.put("gelu", ElementwiseLowerings::gelu);
    LOWERINGS.put("softmax", ElementwiseLowerings::softmax);
    LOWERINGS.put("masked_fill", ElementwiseLowerings::maskedFill);
    LOWERINGS.put("masked_fill_", ElementwiseLowerings::maskedFill);
    LOWERINGS.put("where", ElementwiseLowerings::where);

    LOWERINGS.put("size", ShapeLowerings::size);
    LOWERINGS.put("reshape", (arguments, emitter) -> ShapeLowerings.reshape(arguments, emitter, "shape"));
    LOWERINGS.put("view", (arguments, emitter) -> ShapeLowerings.reshape(arguments, emitter, "size"));
    LOWERINGS.put("flatten", ShapeLowerings::flatten);
    LOWERINGS.put("permute", ShapeLowerings::permute);
    LOWERINGS.put("transpose", ShapeLowerings::transpose);
    LOWERINGS.put("unsqueeze", ShapeLowerings::unsqueeze);
    LOWERINGS.put("squeeze", ShapeLowerings::squeeze);
    LOWERINGS.put("slice", ShapeLowerings::slice);
    LOWERINGS.put("select", ShapeLowerings::select);
    LOWERINGS.put("cat", ShapeLowerings::cat);
    LOWERINGS.put("chunk", ShapeLowerings::chunk);
    LOWERINGS.put("split", ShapeLowerings::split);
    LOWERINGS.put("expand", ShapeLowerings::expand);
    LOWERINGS.put("contiguous", ShapeLowerings::identity);
    LOWERINGS.put("detach", ShapeLowerings::identity);
    LOWERINGS.put("clone", ShapeLowerings::identity);
    LOWERINGS.put("dropout", ShapeLowerings::identity);
    LOWERINGS.put("pad", ShapeLowerings::pad);
    LOWERINGS.put("constant_pad_nd", ShapeLowerings::pad);

    LOWERINGS.put("linear", NetworkLowerings::linear);
    LOWERINGS.put("_convolution", NetworkLowerings::convolution);
    LOWERINGS.put("matmul", (arguments, emitter) -> NetworkLowerings.matmul(arguments, emitter, "other"));
    LOWERINGS.put("bmm", (arguments, emitter) -> NetworkLowerings.matmul(arguments, emitter, "mat2"));
    LOWERINGS.put("baddbmm", NetworkLowerings::baddbmm);
    LOWERINGS.put("einsum", NetworkLowerings::einsum);
    LOWERINGS.put("scaled_dot_product_attention", NetworkLowerings::scaledDotProductAttention);
    LOWERINGS.put("group_norm", NetworkLowerings::groupNorm);
    LOWERINGS.put("layer_norm", NetworkLowerings::layerNorm);
    LOWERINGS.put("embedding", NetworkLowerings::embedding);
    LOWERINGS.put("upsample_nearest2d", NetworkLowerings::upsampleNearest2d);

    LOWERINGS.put("arange", CreationLowerings::arange);
    LOWERINGS.put("full", CreationLowerings::full);
    LOWERINGS.put("zeros", (arguments, emitter) -> CreationLowerings.constantFill(arguments, emitter, 0));
    LOWERINGS.put("ones", (arguments, emitter) -> CreationLowerings.constantFill(arguments, emitter, 1));
    LOWERINGS.put("empty", CreationLowerings::empty);
    LOWERINGS.put("to", CreationLowerings::to);
    LOWERINGS.put("argmax", CreationLowerings::argmax);
    LOWERINGS.put("index", CreationLowerings::index);
    LOWERINGS.put("triu", CreationLowerings::triu);
    LOWERINGS.put("mean", CreationLowerings::mean);
  }

  public static Lowering lowering(String op) {
    return LOWERINGS.get(op);
  }

  /** The names of every lowered op, sorted (for --help and the coverage report). */
  public static java.util.Set<String> names() {
    return LOWERINGS.keySet();
  }
}
