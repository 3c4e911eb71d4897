package dev.kiln.graph.infer;

import static dev.kiln.graph.infer.DimArithmetic.add;
import static dev.kiln.graph.infer.DimArithmetic.divide;
import static dev.kiln.graph.infer.DimArithmetic.divideExactly;
import static dev.kiln.graph.infer.DimArithmetic.multiply;
import static dev.kiln.graph.infer.DimArithmetic.subtract;

import dev.kiln.graph.Attribute;
import dev.kiln.graph.DataType;
import dev.kiln.graph.Microsoft;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.OpType;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Shape.Dim;
import dev.kiln.graph.Shape.Known;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/** Shape (and small-tensor value) functions of the operators Stable Diffusion graphs use, standard and contrib. */
final class OpShapes {
  private OpShapes() {}

  private static final Set<OpType> SAME_AS_FIRST = Set.of(
      Onnx.RELU, Onnx.SIGMOID, Onnx.TANH, Onnx.ERF, Onnx.SQRT, Onnx.NEG, Onnx.EXP, Onnx.LOG, Onnx.ABS,
      Onnx.RECIPROCAL, Onnx.FLOOR, Onnx.CEIL, Onnx.SIN, Onnx.COS, Onnx.SOFTMAX, Onnx.LOG_SOFTMAX, Onnx.IDENTITY,
      Onnx.DROPOUT, Onnx.INSTANCE_NORMALIZATION, Onnx.LAYER_NORMALIZATION, Onnx.GROUP_NORMALIZATION,
      Onnx.BATCH_NORMALIZATION, Onnx.GELU, Onnx.LEAKY_RELU, Onnx.ELU, Onnx.SOFTPLUS, Onnx.CLIP, Onnx.ROUND,
      Onnx.SIGN, Onnx.HARD_SIGMOID, Onnx.HARD_SWISH, Onnx.MISH, Onnx.TRILU, Onnx.CUM_SUM,
      Microsoft.GELU, Microsoft.QUICK_GELU, Microsoft.FAST_GELU, Microsoft.BIAS_GELU, Microsoft.BIAS_ADD,
      Microsoft.SKIP_LAYER_NORMALIZATION, Microsoft.SKIP_SIMPLIFIED_LAYER_NORMALIZATION,
      Microsoft.SIMPLIFIED_LAYER_NORMALIZATION, Microsoft.GROUP_NORM, Microsoft.SKIP_GROUP_NORM);

  private static final Set<OpType> BROADCAST = Set.of(
      Onnx.ADD, Onnx.SUB, Onnx.MUL, Onnx.DIV, Onnx.POW, Onnx.MOD, Onnx.MAX, Onnx.MIN, Onnx.P_RELU, Onnx.AND,
      Onnx.OR, Onnx.XOR, Onnx.EQUAL, Onnx.LESS, Onnx.GREATER, Onnx.LESS_OR_EQUAL, Onnx.GREATER_OR_EQUAL,
      Onnx.WHERE, Onnx.SUM, Onnx.MEAN);

  private static final Set<OpType> COMPARISONS = Set.of(Onnx.EQUAL, Onnx.LESS, Onnx.GREATER, Onnx.LESS_OR_EQUAL,
      Onnx.GREATER_OR_EQUAL, Onnx.AND, Onnx.OR, Onnx.XOR, Onnx.NOT);

  private static final Set<OpType> REDUCTIONS = Set.of(Onnx.REDUCE_MEAN, Onnx.REDUCE_SUM, Onnx.REDUCE_MAX,
      Onnx.REDUCE_MIN, Onnx.REDUCE_PROD, Onnx.REDUCE_L2, Onnx.REDUCE_L1, Onnx.REDUCE_SUM_SQUARE,
      Onnx.REDUCE_LOG_SUM_EXP);

  static void infer(Node node, ShapeInference.Access access) {
    OpType type = node.opType();
    Value x = node.input(0);
    Shape in = access.shape(x);
    DataType inType = access.type(x);
    Value out = node.output(0);
    if (type.equals(Onnx.CONSTANT)) {
      Tensor tensor = access.attributeTensor(node);
      if (tensor != null) {
        access.constant(out, tensor);
      }
      return;
    }
    if (SAME_AS_FIRST.contains(type)) {
      access.set(out, inType, in);
      if (type.equals(Microsoft.SKIP_LAYER_NORMALIZATION) || type.equals(Microsoft.SKIP_SIMPLIFIED_LAYER_NORMALIZATION)) {
        access.set(node.output(3), inType, in);
      }
      if (type.equals(Microsoft.SKIP_GROUP_NORM)) {
        access.set(node.output(1), inType, in);
      }
      if (type.equals(Onnx.IDENTITY)) {
        access.setElements(out, access.elements(x));
      }
      return;
    }
    if (type.equals(Onnx.NOT)) {
      access.set(out, DataType.BOOL, in);
      return;
    }
    if (type.equals(Onnx.CAST)) {
      DataType to = DataType.fromNumberOrNull((int) node.intAttribute("to", 0));
      access.set(out, to, in);
      if (to == DataType.INT64 || to == DataType.INT32) {
        access.setElements(out, access.elements(x));
      }
      return;
    }
    if (type.equals(Onnx.QUANTIZE_LINEAR) || type.equals(Onnx.DEQUANTIZE_LINEAR)) {
      // Elementwise: the shape of x; QuantizeLinear's type is its zero point's (uint8 without one), DequantizeLinear's
      // its scale's.
      Value typed = type.equals(Onnx.QUANTIZE_LINEAR) ? node.input(2) : node.input(1);
      DataType outType = typed != null ? access.type(typed) : type.equals(Onnx.QUANTIZE_LINEAR) ? DataType.UINT8 : DataType.FLOAT;
      access.set(out, outType, in);
      return;
    }
    if (BROADCAST.contains(type)) {
      Shape result = in;
      int first = type.equals(Onnx.WHERE) ? 1 : 0;
      result = access.shape(node.input(first));
      for (int i = 0; i < node.inputCount(); i++) {
        if (i == first) {
          continue;
        }
        result = broadcast(result, access.shape(node.input(i)));
      }
      DataType resultType = COMPARISONS.contains(type) ? DataType.BOOL : access.type(node.input(first));
      access.set(out, resultType, result);
      elementArithmetic(node, access);
      return;
    }
    if (REDUCTIONS.contains(type)) {
      access.set(out, inType, reduce(node, access, in));
      return;
    }
    if (type.equals(Onnx.ARG_MAX) || type.equals(Onnx.ARG_MIN)) {
      if (in != null) {
        List<Dim> dims = new ArrayList<>(in.dims());
        int axis = normalize(node.intAttribute("axis", 0), in.rank());
        if (node.intAttribute("keepdims", 1) == 1) {
          dims.set(axis, Shape.known(1));
        } else {
          dims.remove(axis);
        }
        access.set(out, DataType.INT64, Shape.of(dims));
      }
      return;
    }
    switch (type.key()) {
      case "MatMul" -> access.set(out, inType, matMul(in, access.shape(node.input(1))));
      case "Gemm" -> access.set(out, inType, gemm(node, in, access.shape(node.input(1))));
      case "Conv" -> access.set(out, inType, conv(node, in, access.shape(node.input(1)), false));
      case "AveragePool", "MaxPool", "LpPool" -> access.set(out, inType, pool(node, in));
      case "GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool" -> {
        if (in != null && in.rank() >= 2) {
          List<Dim> dims = new ArrayList<>(in.dims().subList(0, 2));
          for (int i = 2; i < in.rank(); i++) {
            dims.add(Shape.known(1));
          }
          access.set(out, inType, Shape.of(dims));
        }
      }
      case "com.microsoft:NhwcConv" -> access.set(out, inType, conv(node, in, access.shape(node.input(1)), true));
      case "Transpose" -> {
        Shape transposed = transpose(node, in);
        access.set(out, inType, transposed);
        List<Dim> values = access.elements(x);
        if (values != null && in.isFullyKnown() && in.rank() == 2) {
          long rows = in.sizes()[0];
          long columns = in.sizes()[1];
          List<Dim> swapped = new ArrayList<>();
          for (int column = 0; column < columns; column++) {
            for (int row = 0; row < rows; row++) {
              swapped.add(values.get((int) (row * columns + column)));
            }
          }
          access.setElements(out, swapped);
        }
      }
      case "Reshape" -> {
        Shape reshaped = reshape(in, access.elements(node.input(1)), node.intAttribute("allowzero", 0) == 1);
        access.set(out, inType, reshaped);
        if (reshaped != null && (reshaped.rank() <= 1 || reshaped.isFullyKnown())) {
          access.setElements(out, access.elements(x));
        }
      }
      case "Pad" -> access.set(out, inType, pad(node, access, in));
      case "Shape" -> shape(node, access, in);
      case "Size" -> access.set(out, DataType.INT64, Shape.SCALAR);
      case "Gather" -> gather(node, access, in, inType);
      case "Unsqueeze" -> unsqueeze(node, access, in, inType);
      case "Squeeze" -> squeeze(node, access, in, inType);
      case "Concat" -> concat(node, access, inType);
      case "Slice" -> slice(node, access, in, inType);
      case "Split" -> split(node, access, in, inType);
      case "Expand" -> {
        List<Dim> target = access.elements(node.input(1));
        access.set(out, inType, target == null ? null : expand(in, target));
      }
      case "ConstantOfShape" -> {
        List<Dim> target = access.elements(x);
        Attribute value = node.attribute("value");
        access.set(out, value == null ? DataType.FLOAT : value.asTensor().dataType(), target == null ? null : Shape.of(target));
        if (target != null && target.size() == 1 && target.get(0) instanceof Known count && count.value() <= 64
            && value != null && !value.asTensor().dataType().isFloatingPoint()) {
          long filler = value.asTensor().longs()[0];
          List<Dim> filled = new ArrayList<>();
          for (int i = 0; i < count.value(); i++) {
            filled.add(Shape.known(filler));
          }
          access.setElements(out, filled);
        }
      }
      case "Range" -> range(node, access);
      case "Resize" -> resize(node, access, in, inType);
      case "Flatten" -> {
        if (in != null) {
          int axis = normalize(node.intAttribute("axis", 1), in.rank());
          access.set(out, inType, Shape.of(product(in.dims().subList(0, axis)), product(in.dims().subList(axis, in.rank()))));
        }
      }
      case "com.microsoft:MultiHeadAttention" -> multiHeadAttention(node, access, in, inType);
      case "com.microsoft:Attention" -> attention(node, access, in, inType);
      case "com.microsoft:BiasSplitGelu" -> {
        if (in != null) {
          List<Dim> dims = new ArrayList<>(in.dims());
          dims.set(dims.size() - 1, divide(dims.get(dims.size() - 1), Shape.known(2)));
          access.set(out, inType, Shape.of(dims));
        }
      }
      default -> {
        // No shape function: outputs stay unknown and any rule that needs them says so.
      }
    }
  }

  static int normalize(long axis, int rank) {
    return (int) (axis < 0 ? axis + rank : axis);
  }

  private static Dim product(List<Dim> dims) {
    Dim result = Shape.known(1);
    for (Dim dim : dims) {
      result = multiply(result, dim);
    }
    return result;
  }

  /** Numpy broadcasting; a pair of dims that cannot be told equal or 1 gives an unknown dim. */
  static Shape broadcast(Shape a, Shape b) {
    if (a == null || b == null) {
      return null;
    }
    int rank = Math.max(a.rank(), b.rank());
    List<Dim> dims = new ArrayList<>();
    for (int i = 0; i < rank; i++) {
      int ai = i - (rank - a.rank());
      int bi = i - (rank - b.rank());
      Dim da = ai >= 0 ? a.dim(ai) : Shape.known(1);
      Dim db = bi >= 0 ? b.dim(bi) : Shape.known(1);
      if (da.equals(Shape.known(1))) {
        dims.add(db);
      } else if (db.equals(Shape.known(1))) {
        dims.add(da);
      } else if (DimArithmetic.certainlyEqual(da, db)) {
        dims.add(da);
      } else if (da instanceof Known && !(db instanceof Known)) {
        dims.add(da);
      } else if (db instanceof Known && !(da instanceof Known)) {
        dims.add(db);
      } else {
        dims.add(Shape.UNKNOWN);
      }
    }
    return Shape.of(dims);
  }

  /**
   * Expand's output: the broadcast of input and target, except that a symbolic target size wins over a
   * different symbolic input size. Torch's expand (where these graphs come from) never shrinks and never
   * broadcasts its target, so such a target is the size the exporter traced.
   */
  private static Shape expand(Shape in, List<Dim> target) {
    Shape broadcast = broadcast(in, Shape.of(target));
    if (broadcast == null) {
      return null;
    }
    List<Dim> dims = new ArrayList<>(broadcast.dims());
    int offset = dims.size() - target.size();
    for (int i = 0; i < target.size(); i++) {
      if (dims.get(offset + i) instanceof Shape.Unknown && target.get(i) instanceof Shape.Symbolic) {
        dims.set(offset + i, target.get(i));
      }
    }
    return Shape.of(dims);
  }

  private static void elementArithmetic(Node node, ShapeInference.Access access) {
    OpType type = node.opType();
    if (type.equals(Onnx.EQUAL)) {
      List<Dim> a = access.elements(node.input(0));
      List<Dim> b = access.elements(node.input(1));
      if (a == null || b == null || a.size() != b.size()) {
        return;
      }
      List<Dim> result = new ArrayList<>();
      for (int i = 0; i < a.size(); i++) {
        Dim left = a.get(i);
        Dim right = b.get(i);
        if (left instanceof Known l && right instanceof Known r) {
          result.add(Shape.known(l.value() == r.value() ? 1 : 0));
        } else if (DimArithmetic.certainlyEqual(left, right)) {
          result.add(Shape.known(1));
        } else if ((left instanceof Shape.Symbolic && right instanceof Known r && r.value() < 0)
            || (right instanceof Shape.Symbolic && left instanceof Known l && l.value() < 0)) {
          // A size is never negative, so a symbolic size never equals -1 (torch's "keep this dim" marker).
          result.add(Shape.known(0));
        } else {
          return;
        }
      }
      access.setElements(node.output(0), result);
      return;
    }
    if (type.equals(Onnx.WHERE)) {
      List<Dim> condition = access.elements(node.input(0));
      List<Dim> a = access.elements(node.input(1));
      List<Dim> b = access.elements(node.input(2));
      if (condition == null || a == null || b == null) {
        return;
      }
      int size = Math.max(condition.size(), Math.max(a.size(), b.size()));
      List<Dim> result = new ArrayList<>();
      for (int i = 0; i < size; i++) {
        Dim choose = condition.get(condition.size() == 1 ? 0 : i);
        if (!(choose instanceof Known known)) {
          return;
        }
        List<Dim> source = known.value() != 0 ? a : b;
        result.add(source.get(source.size() == 1 ? 0 : i));
      }
      access.setElements(node.output(0), result);
      return;
    }
    if (!(type.equals(Onnx.ADD) || type.equals(Onnx.SUB) || type.equals(Onnx.MUL) || type.equals(Onnx.DIV))) {
      return;
    }
    List<Dim> a = access.elements(node.input(0));
    List<Dim> b = access.elements(node.input(1));
    if (a == null || b == null || (a.size() != b.size() && a.size() != 1 && b.size() != 1)) {
      return;
    }
    DataType dataType = access.type(node.input(0));
    if (dataType != DataType.INT64 && dataType != DataType.INT32) {
      return;
    }
    int size = Math.max(a.size(), b.size());
    List<Dim> result = new ArrayList<>();
    for (int i = 0; i < size; i++) {
      Dim left = a.get(a.size() == 1 ? 0 : i);
      Dim right = b.get(b.size() == 1 ? 0 : i);
      Dim value;
      if (type.equals(Onnx.ADD)) {
        value = add(left, right);
      } else if (type.equals(Onnx.SUB)) {
        value = subtract(left, right);
      } else if (type.equals(Onnx.MUL)) {
        value = multiply(left, right);
      } else {
        value = divide(left, right);
      }
      result.add(value);
    }
    access.setElements(node.output(0), result);
  }

  private static Shape reduce(Node node, ShapeInference.Access access, Shape in) {
    if (in == null) {
      return null;
    }
    long[] axes = null;
    if (node.hasAttribute("axes")) {
      axes = node.attribute("axes").asLongs();
    } else if (node.input(1) != null) {
      List<Dim> values = access.elements(node.input(1));
      if (values == null) {
        return null;
      }
      axes = new long[values.size()];
      for (int i = 0; i < axes.length; i++) {
        if (!(values.get(i) instanceof Known known)) {
          return null;
        }
        axes[i] = known.value();
      }
    }
    boolean keep = node.intAttribute("keepdims", 1) == 1;
    List<Dim> dims = new ArrayList<>();
    for (int i = 0; i < in.rank(); i++) {
      boolean reduced = axes == null || axes.length == 0;
      if (axes != null) {
        for (long axis : axes) {
          reduced |= normalize(axis, in.rank()) == i;
        }
      }
      if (!reduced) {
        dims.add(in.dim(i));
      } else if (keep) {
        dims.add(Shape.known(1));
      }
    }
    return Shape.of(dims);
  }

  static Shape matMul(Shape a, Shape b) {
    if (a == null || b == null || a.rank() == 0 || b.rank() == 0) {
      return null;
    }
    List<Dim> left = new ArrayList<>(a.dims());
    List<Dim> right = new ArrayList<>(b.dims());
    boolean vectorLeft = left.size() == 1;
    boolean vectorRight = right.size() == 1;
    if (vectorLeft) {
      left.add(0, Shape.known(1));
    }
    if (vectorRight) {
      right.add(Shape.known(1));
    }
    Shape batch = broadcast(Shape.of(left.subList(0, left.size() - 2)), Shape.of(right.subList(0, right.size() - 2)));
    List<Dim> dims = new ArrayList<>(batch.dims());
    if (!vectorLeft) {
      dims.add(left.get(left.size() - 2));
    }
    if (!vectorRight) {
      dims.add(right.get(right.size() - 1));
    }
    return Shape.of(dims);
  }

  private static Shape pad(Node node, ShapeInference.Access access, Shape in) {
    if (in == null) {
      return null;
    }
    long[] pads;
    if (node.hasAttribute("pads")) {
      pads = node.attribute("pads").asLongs();
    } else {
      List<Dim> values = access.elements(node.input(1));
      if (values == null) {
        return null;
      }
      pads = new long[values.size()];
      for (int i = 0; i < pads.length; i++) {
        if (!(values.get(i) instanceof Known known)) {
          return null;
        }
        pads[i] = known.value();
      }
    }
    if (node.input(3) != null || pads.length != 2 * in.rank()) {
      return null;
    }
    List<Dim> dims = new ArrayList<>();
    for (int i = 0; i < in.rank(); i++) {
      dims.add(add(in.dim(i), Shape.known(pads[i] + pads[i + in.rank()])));
    }
    return Shape.of(dims);
  }

  private static Shape gemm(Node node, Shape a, Shape b) {
    if (a == null || b == null || a.rank() != 2 || b.rank() != 2) {
      return null;
    }
    Dim m = node.intAttribute("transA", 0) == 1 ? a.dim(1) : a.dim(0);
    Dim n = node.intAttribute("transB", 0) == 1 ? b.dim(0) : b.dim(1);
    return Shape.of(m, n);
  }

  private static Shape conv(Node node, Shape in, Shape weight, boolean channelsLast) {
    if (in == null || weight == null || in.rank() < 3) {
      return null;
    }
    int spatial = in.rank() - 2;
    String autoPad = node.hasAttribute("auto_pad") ? node.attribute("auto_pad").asString() : "NOTSET";
    if (!autoPad.equals("NOTSET") && !autoPad.equals("VALID")) {
      return null;
    }
    long[] kernel = node.hasAttribute("kernel_shape") ? node.attribute("kernel_shape").asLongs() : null;
    long[] strides = node.hasAttribute("strides") ? node.attribute("strides").asLongs() : null;
    long[] pads = node.hasAttribute("pads") ? node.attribute("pads").asLongs() : null;
    long[] dilations = node.hasAttribute("dilations") ? node.attribute("dilations").asLongs() : null;
    List<Dim> dims = new ArrayList<>();
    dims.add(in.dim(0));
    if (!channelsLast) {
      dims.add(weight.dim(0));
    }
    for (int i = 0; i < spatial; i++) {
      long k;
      if (kernel != null) {
        k = kernel[i];
      } else {
        Dim w = weight.dim(channelsLast ? 1 + i : 2 + i);
        if (!(w instanceof Known known)) {
          return null;
        }
        k = known.value();
      }
      Dim input = in.dim(channelsLast ? 1 + i : 2 + i);
      dims.add(DimArithmetic.window(input, k, strides == null ? 1 : strides[i], pads == null ? 0 : pads[i],
          pads == null ? 0 : pads[i + spatial], dilations == null ? 1 : dilations[i]));
    }
    if (channelsLast) {
      dims.add(weight.dim(0));
    }
    return Shape.of(dims);
  }

  /** Pooling windows (NCHW...): channels kept; ceil_mode as floor((x + s - 1) / s) over the padded extent. */
  private static Shape pool(Node node, Shape in) {
    if (in == null || in.rank() < 3 || !node.hasAttribute("kernel_shape")) {
      return null;
    }
    String autoPad = node.hasAttribute("auto_pad") ? node.attribute("auto_pad").asString() : "NOTSET";
    if (!autoPad.equals("NOTSET") && !autoPad.equals("VALID")) {
      return null;
    }
    int spatial = in.rank() - 2;
    long[] kernel = node.attribute("kernel_shape").asLongs();
    long[] strides = node.hasAttribute("strides") ? node.attribute("strides").asLongs() : null;
    long[] pads = node.hasAttribute("pads") ? node.attribute("pads").asLongs() : null;
    long[] dilations = node.hasAttribute("dilations") ? node.attribute("dilations").asLongs() : null;
    boolean ceil = node.intAttribute("ceil_mode", 0) == 1;
    List<Dim> dims = new ArrayList<>(in.dims().subList(0, 2));
    for (int i = 0; i < spatial; i++) {
      long stride = strides == null ? 1 : strides[i];
      long padEnd = (pads == null ? 0 : pads[i + spatial]) + (ceil ? stride - 1 : 0);
      dims.add(DimArithmetic.window(in.dim(2 + i), kernel[i], stride, pads == null ? 0 : pads[i], padEnd,
          dilations == null ? 1 : dilations[i]));
    }
    return Shape.of(dims);
  }

  private static Shape transpose(Node node, Shape in) {
    if (in == null) {
      return null;
    }
    long[] perm = node.hasAttribute("perm") ? node.attribute("perm").asLongs() : null;
    List<Dim> dims = new ArrayList<>();
    for (int i = 0; i < in.rank(); i++) {
      dims.add(in.dim(perm == null ? in.rank() - 1 - i : (int) perm[i]));
    }
    return Shape.of(dims);
  }

  static Shape reshape(Shape in, List<Dim> target, boolean allowZero) {
    if (target == null) {
      return null;
    }
    List<Dim> dims = new ArrayList<>();
    int inferred = -1;
    for (int i = 0; i < target.size(); i++) {
      Dim dim = target.get(i);
      if (dim.equals(Shape.known(0)) && !allowZero) {
        dims.add(in != null && i < in.rank() ? in.dim(i) : Shape.UNKNOWN);
      } else if (dim.equals(Shape.known(-1))) {
        inferred = i;
        dims.add(Shape.UNKNOWN);
      } else {
        dims.add(dim);
      }
    }
    if (inferred >= 0) {
      Dim known = Shape.known(1);
      for (int i = 0; i < dims.size(); i++) {
        if (i != inferred) {
          known = multiply(known, dims.get(i));
        }
      }
      if (in != null && !DimArithmetic.isUnknown(known)) {
        Dim total = product(in.dims());
        Dim quotient = DimArithmetic.isUnknown(total) ? null : divideExactly(total, known);
        dims.set(inferred, quotient == null ? Shape.UNKNOWN : quotient);
      }
    }
    return Shape.of(dims);
  }

  private static void shape(Node node, ShapeInference.Access access, Shape in) {
    Value out = node.output(0);
    if (in == null) {
      access.set(out, DataType.INT64, null);
      return;
    }
    int start = node.hasAttribute("start") ? clampAxis(node.intAttribute("start", 0), in.rank()) : 0;
    int end = node.hasAttribute("end") ? clampAxis(node.intAttribute("end", in.rank()), in.rank()) : in.rank();
    List<Dim> dims = end > start ? new ArrayList<>(in.dims().subList(start, end)) : List.of();
    access.set(out, DataType.INT64, Shape.of(dims.size()));
    access.setElements(out, dims);
  }

  private static int clampAxis(long axis, int rank) {
    long value = axis < 0 ? axis + rank : axis;
    return (int) Math.max(0, Math.min(rank, value));
  }

  private static void gather(Node node, ShapeInference.Access access, Shape in, DataType inType) {
    Value out = node.output(0);
    Shape indices = access.shape(node.input(1));
    if (in == null || indices == null) {
      return;
    }
    int axis = normalize(node.intAttribute("axis", 0), in.rank());
    List<Dim> dims = new ArrayList<>(in.dims().subList(0, axis));
    dims.addAll(indices.dims());
    dims.addAll(in.dims().subList(axis + 1, in.rank()));
    access.set(out, inType, Shape.of(dims));
    List<Dim> data = access.elements(node.input(0));
    List<Dim> index = access.elements(node.input(1));
    if (data != null && index != null && in.rank() == 1) {
      List<Dim> picked = new ArrayList<>();
      for (Dim position : index) {
        if (!(position instanceof Known known)) {
          return;
        }
        int at = (int) (known.value() < 0 ? known.value() + data.size() : known.value());
        if (at < 0 || at >= data.size()) {
          return;
        }
        picked.add(data.get(at));
      }
      access.setElements(out, picked);
    }
  }

  private static long[] axesOf(Node node, ShapeInference.Access access) {
    if (node.hasAttribute("axes")) {
      return node.attribute("axes").asLongs();
    }
    List<Dim> values = access.elements(node.input(1));
    if (values == null) {
      return null;
    }
    long[] axes = new long[values.size()];
    for (int i = 0; i < axes.length; i++) {
      if (!(values.get(i) instanceof Known known)) {
        return null;
      }
      axes[i] = known.value();
    }
    return axes;
  }

  private static void unsqueeze(Node node, ShapeInference.Access access, Shape in, DataType inType) {
    long[] axes = axesOf(node, access);
    if (in == null || axes == null) {
      return;
    }
    int rank = in.rank() + axes.length;
    boolean[] inserted = new boolean[rank];
    for (long axis : axes) {
      inserted[normalize(axis, rank)] = true;
    }
    List<Dim> dims = new ArrayList<>();
    int next = 0;
    for (int i = 0; i < rank; i++) {
      dims.add(inserted[i] ? Shape.known(1) : in.dim(next++));
    }
    access.set(node.output(0), inType, Shape.of(dims));
    access.setElements(node.output(0), access.elements(node.input(0)));
  }

  private static void squeeze(Node node, ShapeInference.Access access, Shape in, DataType inType) {
    if (in == null) {
      return;
    }
    long[] axes = node.hasAttribute("axes") || node.input(1) != null ? axesOf(node, access) : null;
    if (axes == null && (node.hasAttribute("axes") || node.input(1) != null)) {
      return;
    }
    List<Dim> dims = new ArrayList<>();
    for (int i = 0; i < in.rank(); i++) {
      boolean squeezed = false;
      if (axes == null) {
        squeezed = in.dim(i).equals(Shape.known(1));
      } else {
        for (long axis : axes) {
          squeezed |= normalize(axis, in.rank()) == i;
        }
      }
      if (!squeezed) {
        dims.add(in.dim(i));
      }
    }
    access.set(node.output(0), inType, Shape.of(dims));
    access.setElements(node.output(0), access.elements(node.input(0)));
  }

  private static void concat(Node node, ShapeInference.Access access, DataType inType) {
    Shape first = access.shape(node.input(0));
    if (first == null) {
      return;
    }
    int axis = normalize(node.intAttribute("axis", 0), first.rank());
    List<Dim> dims = new ArrayList<>(first.dims());
    List<Dim> values = new ArrayList<>();
    boolean valuesKnown = true;
    for (int i = 0; i < node.inputCount(); i++) {
      Shape shape = access.shape(node.input(i));
      if (shape == null || shape.rank() != first.rank()) {
        return;
      }
      if (i > 0) {
        dims.set(axis, add(dims.get(axis), shape.dim(axis)));
        for (int d = 0; d < dims.size(); d++) {
          if (d != axis && !DimArithmetic.certainlyEqual(dims.get(d), shape.dim(d)) && dims.get(d) instanceof Shape.Unknown) {
            dims.set(d, shape.dim(d));
          }
        }
      }
      List<Dim> part = access.elements(node.input(i));
      if (part == null) {
        valuesKnown = false;
      } else {
        values.addAll(part);
      }
    }
    access.set(node.output(0), inType, Shape.of(dims));
    if (valuesKnown && first.rank() == 1) {
      access.setElements(node.output(0), values);
    }
  }

  private static List<Dim> optionalElements(Node node, int index, ShapeInference.Access access) {
    return node.input(index) == null ? null : access.elements(node.input(index));
  }

  private static void slice(Node node, ShapeInference.Access access, Shape in, DataType inType) {
    if (in == null) {
      return;
    }
    List<Dim> starts;
    List<Dim> ends;
    List<Dim> axes;
    List<Dim> steps;
    if (node.hasAttribute("starts")) {
      starts = known(node.attribute("starts").asLongs());
      ends = known(node.attribute("ends").asLongs());
      axes = node.hasAttribute("axes") ? known(node.attribute("axes").asLongs()) : null;
      steps = null;
    } else {
      starts = optionalElements(node, 1, access);
      ends = optionalElements(node, 2, access);
      axes = optionalElements(node, 3, access);
      steps = optionalElements(node, 4, access);
      if (starts == null || ends == null || (node.input(3) != null && axes == null) || (node.input(4) != null && steps == null)) {
        return;
      }
    }
    List<Dim> dims = new ArrayList<>(in.dims());
    for (int i = 0; i < starts.size(); i++) {
      int axis = i;
      if (axes != null) {
        if (!(axes.get(i) instanceof Known known)) {
          return;
        }
        axis = normalize(known.value(), in.rank());
      }
      long step = 1;
      if (steps != null) {
        if (!(steps.get(i) instanceof Known known)) {
          return;
        }
        step = known.value();
      }
      dims.set(axis, sliceLength(in.dim(axis), starts.get(i), ends.get(i), step));
    }
    access.set(node.output(0), inType, Shape.of(dims));
    List<Dim> data = access.elements(node.input(0));
    if (data != null && in.rank() > 1 && in.isFullyKnown() && Shape.of(dims).isFullyKnown()) {
      access.setElements(node.output(0), sliceElements(data, in.sizes(), Shape.of(dims).sizes(), starts, axes, steps));
      return;
    }
    if (data != null && in.rank() == 1 && dims.get(0) instanceof Known length && starts.get(0) instanceof Known start) {
      long from = start.value() < 0 ? start.value() + data.size() : Math.min(start.value(), data.size());
      long count = length.value();
      long step = 1;
      if (steps != null && steps.get(0) instanceof Known known) {
        step = known.value();
      }
      if (step == 1 && from >= 0 && from + count <= data.size()) {
        access.setElements(node.output(0), data.subList((int) from, (int) (from + count)));
      }
    }
  }

  /** Elements of a slice of a small fully known tensor (any rank, any steps), or null. */
  private static List<Dim> sliceElements(List<Dim> data, long[] sizes, long[] outSizes, List<Dim> starts, List<Dim> axes,
      List<Dim> steps) {
    int rank = sizes.length;
    long[] from = new long[rank];
    long[] step = new long[rank];
    java.util.Arrays.fill(step, 1);
    for (int i = 0; i < starts.size(); i++) {
      if (!(starts.get(i) instanceof Known start)) {
        return null;
      }
      int axis = i;
      if (axes != null) {
        if (!(axes.get(i) instanceof Known known)) {
          return null;
        }
        axis = normalize(known.value(), rank);
      }
      long stride = 1;
      if (steps != null) {
        if (!(steps.get(i) instanceof Known known)) {
          return null;
        }
        stride = known.value();
      }
      from[axis] = clampIndex(start.value(), sizes[axis], stride);
      step[axis] = stride;
    }
    long total = 1;
    for (long size : outSizes) {
      total *= size;
    }
    List<Dim> out = new ArrayList<>();
    long[] index = new long[rank];
    for (long flat = 0; flat < total; flat++) {
      long remainder = flat;
      long offset = 0;
      long stride = 1;
      for (int axis = rank - 1; axis >= 0; axis--) {
        index[axis] = remainder % outSizes[axis];
        remainder /= outSizes[axis];
      }
      for (int axis = rank - 1; axis >= 0; axis--) {
        offset += (from[axis] + index[axis] * step[axis]) * stride;
        stride *= sizes[axis];
      }
      if (offset < 0 || offset >= data.size()) {
        return null;
      }
      out.add(data.get((int) offset));
    }
    return out;
  }

  private static List<Dim> known(long[] values) {
    List<Dim> dims = new ArrayList<>();
    for (long value : values) {
      dims.add(Shape.known(value));
    }
    return dims;
  }

  /** Length of x[start:end:step] along a dim of size {@code size}, ONNX clamping rules. */
  static Dim sliceLength(Dim size, Dim start, Dim end, long step) {
    if (size instanceof Known n && start instanceof Known s && end instanceof Known e) {
      long length = n.value();
      long from = clampIndex(s.value(), length, step);
      long to = clampIndex(e.value(), length, step);
      long count = step > 0 ? Math.max(0, ceilDiv(to - from, step)) : Math.max(0, ceilDiv(from - to, -step));
      return Shape.known(count);
    }
    if (step != 1) {
      return Shape.UNKNOWN;
    }
    // Symbolic size: only the patterns exporters emit — [0:big], [0:k], [k:big], [a:b] with a, b in range.
    boolean endIsBig = end instanceof Known e && e.value() >= Integer.MAX_VALUE;
    boolean startIsZero = start.equals(Shape.known(0));
    if (startIsZero && endIsBig) {
      return size;
    }
    if (endIsBig && start instanceof Known s && s.value() >= 0) {
      return subtract(size, start);
    }
    if (endIsBig && !(start instanceof Known) && !(start instanceof Shape.Unknown)) {
      return subtract(size, start);
    }
    if (end instanceof Known e && e.value() < 0 && startIsZero) {
      return add(size, end);
    }
    if (!(end instanceof Known) || (end instanceof Known e && e.value() >= 0)) {
      if (!(start instanceof Known s) || s.value() >= 0) {
        return subtract(end, start);
      }
    }
    return Shape.UNKNOWN;
  }

  private static long clampIndex(long index, long length, long step) {
    long value = index < 0 ? index + length : index;
    if (step > 0) {
      return Math.max(0, Math.min(length, value));
    }
    return Math.max(-1, Math.min(length - 1, value));
  }

  private static long ceilDiv(long a, long b) {
    return -Math.floorDiv(-a, b);
  }

  private static void split(Node node, ShapeInference.Access access, Shape in, DataType inType) {
    if (in == null) {
      return;
    }
    int axis = normalize(node.intAttribute("axis", 0), in.rank());
    int outputs = node.outputCount();
    List<Dim> sizes = null;
    if (node.hasAttribute("split")) {
      sizes = known(node.attribute("split").asLongs());
    } else if (node.input(1) != null) {
      sizes = access.elements(node.input(1));
    }
    for (int i = 0; i < outputs; i++) {
      List<Dim> dims = new ArrayList<>(in.dims());
      Dim size = sizes != null && i < sizes.size() ? sizes.get(i) : null;
      if (size == null) {
        Dim exact = divideExactly(in.dim(axis), Shape.known(outputs));
        size = exact == null ? Shape.UNKNOWN : exact;
      }
      dims.set(axis, size);
      access.set(node.output(i), inType, Shape.of(dims));
    }
  }

  private static void range(Node node, ShapeInference.Access access) {
    DataType type = access.type(node.input(0));
    List<Dim> start = access.elements(node.input(0));
    List<Dim> limit = access.elements(node.input(1));
    List<Dim> delta = access.elements(node.input(2));
    Dim length = Shape.UNKNOWN;
    if (start != null && limit != null && delta != null && delta.get(0) instanceof Known d && d.value() == 1) {
      length = subtract(limit.get(0), start.get(0));
    }
    access.set(node.output(0), type, Shape.of(length));
  }

  private static void resize(Node node, ShapeInference.Access access, Shape in, DataType inType) {
    if (in == null) {
      return;
    }
    Value scalesValue = node.input(2);
    Value sizesValue = node.input(3);
    if (sizesValue != null) {
      List<Dim> sizes = access.elements(sizesValue);
      access.set(node.output(0), inType, sizes == null ? null : Shape.of(sizes));
      return;
    }
    if (scalesValue == null) {
      return;
    }
    Tensor scales = constantOf(scalesValue);
    if (scales == null || scales.elementCount() != in.rank()) {
      return;
    }
    float[] factors = scales.floats();
    List<Dim> dims = new ArrayList<>();
    for (int i = 0; i < in.rank(); i++) {
      float factor = factors[i];
      Dim dim = in.dim(i);
      if (factor == Math.rint(factor)) {
        dims.add(multiply(dim, Shape.known((long) factor)));
      } else if (dim instanceof Known known) {
        dims.add(Shape.known((long) Math.floor(known.value() * factor)));
      } else {
        dims.add(Shape.UNKNOWN);
      }
    }
    access.set(node.output(0), inType, Shape.of(dims));
  }

  private static Tensor constantOf(Value value) {
    if (value.initializer() != null && !value.isGraphInput()) {
      return value.initializer();
    }
    Node producer = value.producer();
    if (producer != null && producer.is(Onnx.CONSTANT) && producer.attribute("value") != null) {
      return producer.attribute("value").asTensor();
    }
    return null;
  }

  private static void multiHeadAttention(Node node, ShapeInference.Access access, Shape query, DataType type) {
    if (query == null) {
      return;
    }
    if (query.rank() == 5) {
      access.set(node.output(0), type, Shape.of(query.dim(0), query.dim(1), multiply(query.dim(2), query.dim(4))));
      return;
    }
    Shape value = access.shape(node.input(2));
    Dim hidden = value != null && value.rank() == 3 ? value.dim(2) : query.dim(2);
    if (value == null) {
      Shape key = access.shape(node.input(1));
      if (key != null && key.rank() == 5) {
        hidden = multiply(key.dim(2), key.dim(4));
      }
    }
    access.set(node.output(0), type, Shape.of(query.dim(0), query.dim(1), hidden));
  }

  private static void attention(Node node, ShapeInference.Access access, Shape input, DataType type) {
    Shape weights = access.shape(node.input(1));
    if (input == null || weights == null || weights.rank() != 2) {
      return;
    }
    Dim hidden;
    if (node.hasAttribute("qkv_hidden_sizes")) {
      hidden = Shape.known(node.attribute("qkv_hidden_sizes").asLongs()[2]);
    } else {
      Dim exact = divideExactly(weights.dim(1), Shape.known(3));
      hidden = exact == null ? Shape.UNKNOWN : exact;
    }
    access.set(node.output(0), type, Shape.of(input.dim(0), input.dim(1), hidden));
  }
}
