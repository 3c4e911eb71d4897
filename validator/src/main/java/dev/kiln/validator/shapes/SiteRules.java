package dev.kiln.validator.shapes;

import dev.kiln.graph.Microsoft;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.OpType;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Shape.Dim;
import dev.kiln.graph.infer.DimArithmetic;
import dev.kiln.graph.infer.ShapeInference;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * The shape conditions of the ops whose operands must agree: broadcasting, Reshape's element count, Concat's
 * other axes, MatMul/Gemm's inner dim, Conv's channels and window. Applied to symbolic shapes a HOLDS is a proof
 * for every size; applied to the exact shapes at one size it is the answer at that size.
 */
final class SiteRules {
  private SiteRules() {}

  enum Status { HOLDS, FAILS, UNDECIDED }

  /** The outcome at one site; {@code operands} are the input indices whose shapes the message should show. */
  record Verdict(Status status, String problem, int[] operands, int[] axes) {
    static final Verdict HOLDS = new Verdict(Status.HOLDS, null, new int[0], new int[0]);

    static Verdict fails(String problem, int... operands) {
      return new Verdict(Status.FAILS, problem, operands, new int[0]);
    }

    static Verdict undecided(String problem, int... operands) {
      return new Verdict(Status.UNDECIDED, problem, operands, new int[0]);
    }

    /** A failure between two operands' dims: operand {@code left} axis {@code leftAxis} against {@code right}'s. */
    static Verdict mismatch(String problem, int left, int leftAxis, int right, int rightAxis) {
      return new Verdict(Status.FAILS, problem, new int[] {left, right}, new int[] {leftAxis, rightAxis});
    }
  }

  private static final Set<OpType> BROADCASTING = Set.of(Onnx.ADD, Onnx.SUB, Onnx.MUL, Onnx.DIV, Onnx.POW,
      Onnx.MOD, Onnx.MAX, Onnx.MIN, Onnx.P_RELU, Onnx.AND, Onnx.OR, Onnx.XOR, Onnx.EQUAL, Onnx.LESS, Onnx.GREATER,
      Onnx.LESS_OR_EQUAL, Onnx.GREATER_OR_EQUAL, Onnx.WHERE, Onnx.SUM, Onnx.MEAN);

  static boolean applies(Node node) {
    OpType type = node.opType();
    return BROADCASTING.contains(type) || type.equals(Onnx.RESHAPE) || type.equals(Onnx.CONCAT)
        || type.equals(Onnx.MAT_MUL) || type.equals(Onnx.GEMM) || type.equals(Onnx.CONV)
        || type.equals(Microsoft.NHWC_CONV);
  }

  static Verdict check(Node node, ShapeInference shapes) {
    OpType type = node.opType();
    if (BROADCASTING.contains(type)) {
      return broadcast(node, shapes);
    }
    if (type.equals(Onnx.RESHAPE)) {
      return reshape(node, shapes);
    }
    if (type.equals(Onnx.CONCAT)) {
      return concat(node, shapes);
    }
    if (type.equals(Onnx.MAT_MUL)) {
      return matMul(node, shapes);
    }
    if (type.equals(Onnx.GEMM)) {
      return gemm(node, shapes);
    }
    return conv(node, shapes, type.equals(Microsoft.NHWC_CONV));
  }

  private static boolean isOne(Dim dim) {
    return dim instanceof Shape.Known known && known.value() == 1;
  }

  private static boolean unknown(Dim dim) {
    return dim instanceof Shape.Unknown;
  }

  private static Verdict broadcast(Node node, ShapeInference shapes) {
    List<Shape> operands = new ArrayList<>();
    List<Integer> indices = new ArrayList<>();
    for (int i = 0; i < node.inputCount(); i++) {
      if (node.input(i) == null) {
        continue;
      }
      Shape shape = shapes.shape(node.input(i));
      if (shape == null) {
        return Verdict.undecided("the rank of input " + i + " is unknown", i);
      }
      operands.add(shape);
      indices.add(i);
    }
    int rank = operands.stream().mapToInt(Shape::rank).max().orElse(0);
    for (int position = 0; position < rank; position++) {
      int firstOperand = -1;
      int firstAxis = -1;
      Dim first = null;
      for (int k = 0; k < operands.size(); k++) {
        Shape shape = operands.get(k);
        int axis = position - (rank - shape.rank());
        if (axis < 0) {
          continue;
        }
        Dim dim = shape.dim(axis);
        if (unknown(dim)) {
          return Verdict.undecided("dim " + position + " of input " + indices.get(k) + " is unknown", indices.get(k));
        }
        if (isOne(dim)) {
          continue;
        }
        if (first == null) {
          first = dim;
          firstOperand = indices.get(k);
          firstAxis = axis;
        } else if (!DimArithmetic.certainlyEqual(first, dim)) {
          return Verdict.mismatch("operands cannot broadcast on axis " + position, firstOperand, firstAxis,
              indices.get(k), axis);
        }
      }
    }
    return Verdict.HOLDS;
  }

  private static Verdict reshape(Node node, ShapeInference shapes) {
    Shape data = shapes.shape(node.input(0));
    List<Dim> target = shapes.elements(node.input(1));
    if (data == null) {
      return Verdict.undecided("the rank of the data is unknown", 0);
    }
    if (target == null) {
      return Verdict.undecided("the target shape is not known before running", 0, 1);
    }
    boolean allowZero = node.intAttribute("allowzero", 0) == 1;
    Dim total = product(data.dims());
    Dim known = Shape.known(1);
    boolean inferred = false;
    for (int i = 0; i < target.size(); i++) {
      Dim dim = target.get(i);
      if (unknown(dim)) {
        return Verdict.undecided("target element " + i + " is unknown", 0, 1);
      }
      if (dim instanceof Shape.Known value && value.value() == -1) {
        if (inferred) {
          return Verdict.fails("the target has two -1 entries", 0, 1);
        }
        inferred = true;
        continue;
      }
      if (dim instanceof Shape.Known value && value.value() == 0 && !allowZero) {
        if (i >= data.rank()) {
          return Verdict.fails("target element " + i + " copies a dim the data does not have", 0, 1);
        }
        dim = data.dim(i);
      }
      known = DimArithmetic.multiply(known, dim);
    }
    if (unknown(total) || unknown(known)) {
      return Verdict.undecided("the element count is unknown", 0, 1);
    }
    if (inferred) {
      if (known instanceof Shape.Known value && value.value() == 0) {
        return Verdict.fails("the target's other entries multiply to 0, so -1 cannot be inferred", 0, 1);
      }
      if (total instanceof Shape.Known t && known instanceof Shape.Known k) {
        return t.value() % k.value() == 0 ? Verdict.HOLDS
            : Verdict.fails(t.value() + " elements do not divide into the target's " + k.value(), 0, 1);
      }
      return DimArithmetic.divideExactly(total, known) != null ? Verdict.HOLDS
          : Verdict.fails("the element count " + DimPrinter.print(total) + " is not a multiple of the target's "
              + DimPrinter.print(known), 0, 1);
    }
    return DimArithmetic.certainlyEqual(total, known) ? Verdict.HOLDS
        : Verdict.fails("the data has " + DimPrinter.print(total) + " elements, the target " + DimPrinter.print(known), 0, 1);
  }

  private static Verdict concat(Node node, ShapeInference shapes) {
    Shape first = shapes.shape(node.input(0));
    if (first == null) {
      return Verdict.undecided("the rank of input 0 is unknown", 0);
    }
    int axis = (int) node.intAttribute("axis", 0);
    if (axis < 0) {
      axis += first.rank();
    }
    for (int i = 1; i < node.inputCount(); i++) {
      Shape other = shapes.shape(node.input(i));
      if (other == null) {
        return Verdict.undecided("the rank of input " + i + " is unknown", i);
      }
      if (other.rank() != first.rank()) {
        return Verdict.fails("inputs have ranks " + first.rank() + " and " + other.rank(), 0, i);
      }
      for (int d = 0; d < first.rank(); d++) {
        if (d == axis) {
          continue;
        }
        if (unknown(first.dim(d)) || unknown(other.dim(d))) {
          return Verdict.undecided("dim " + d + " is unknown", 0, i);
        }
        if (!DimArithmetic.certainlyEqual(first.dim(d), other.dim(d))) {
          return Verdict.mismatch("inputs differ on axis " + d + " (concatenating on " + axis + ")", 0, d, i, d);
        }
      }
    }
    return Verdict.HOLDS;
  }

  private static Verdict matMul(Node node, ShapeInference shapes) {
    Shape a = shapes.shape(node.input(0));
    Shape b = shapes.shape(node.input(1));
    if (a == null || b == null) {
      return Verdict.undecided("an operand's rank is unknown", 0, 1);
    }
    if (a.rank() == 0 || b.rank() == 0) {
      return Verdict.fails("MatMul needs operands of rank 1 or more", 0, 1);
    }
    Dim inner = a.dim(a.rank() - 1);
    Dim other = b.rank() == 1 ? b.dim(0) : b.dim(b.rank() - 2);
    Verdict dims = compare(inner, other, "the inner dims differ", a.rank() - 1, b.rank() == 1 ? 0 : b.rank() - 2);
    if (dims.status() != Status.HOLDS) {
      return dims;
    }
    int batchA = Math.max(0, a.rank() - 2);
    int batchB = Math.max(0, b.rank() - 2);
    int rank = Math.max(batchA, batchB);
    for (int position = 0; position < rank; position++) {
      int ia = position - (rank - batchA);
      int ib = position - (rank - batchB);
      Dim da = ia >= 0 ? a.dim(ia) : Shape.known(1);
      Dim db = ib >= 0 ? b.dim(ib) : Shape.known(1);
      if (unknown(da) || unknown(db)) {
        return Verdict.undecided("a batch dim is unknown", 0, 1);
      }
      if (!isOne(da) && !isOne(db) && !DimArithmetic.certainlyEqual(da, db)) {
        return Verdict.mismatch("the batch dims cannot broadcast on axis " + position, 0, ia, 1, ib);
      }
    }
    return Verdict.HOLDS;
  }

  private static Verdict gemm(Node node, ShapeInference shapes) {
    Shape a = shapes.shape(node.input(0));
    Shape b = shapes.shape(node.input(1));
    if (a == null || b == null) {
      return Verdict.undecided("an operand's rank is unknown", 0, 1);
    }
    if (a.rank() != 2 || b.rank() != 2) {
      return Verdict.fails("Gemm needs two matrices", 0, 1);
    }
    Dim k = node.intAttribute("transA", 0) == 1 ? a.dim(0) : a.dim(1);
    Dim other = node.intAttribute("transB", 0) == 1 ? b.dim(1) : b.dim(0);
    return compare(k, other, "the inner dims differ", node.intAttribute("transA", 0) == 1 ? 0 : 1,
        node.intAttribute("transB", 0) == 1 ? 1 : 0);
  }

  private static Verdict conv(Node node, ShapeInference shapes, boolean channelsLast) {
    Shape x = shapes.shape(node.input(0));
    Shape w = shapes.shape(node.input(1));
    if (x == null || w == null) {
      return Verdict.undecided("an operand's rank is unknown", 0, 1);
    }
    if (x.rank() != w.rank() || x.rank() < 3) {
      return Verdict.fails("data and weight ranks differ", 0, 1);
    }
    long group = node.intAttribute("group", 1);
    Dim channels = channelsLast ? x.dim(x.rank() - 1) : x.dim(1);
    Dim weightChannels = channelsLast ? w.dim(w.rank() - 1) : w.dim(1);
    Verdict channelCheck = compare(channels, DimArithmetic.multiply(weightChannels, Shape.known(group)),
        "the data's channels differ from the weight's × group " + group, channelsLast ? x.rank() - 1 : 1,
        channelsLast ? w.rank() - 1 : 1);
    if (channelCheck.status() != Status.HOLDS) {
      return channelCheck;
    }
    Shape out = shapes.shape(node.output(0));
    if (out != null) {
      for (Dim dim : out.dims()) {
        if (dim instanceof Shape.Known known && known.value() < 1) {
          return Verdict.fails("the window is larger than the padded input", 0, 1);
        }
      }
    }
    return Verdict.HOLDS;
  }

  private static Verdict compare(Dim a, Dim b, String problem, int leftAxis, int rightAxis) {
    if (unknown(a) || unknown(b)) {
      return Verdict.undecided("a dim is unknown", 0, 1);
    }
    return DimArithmetic.certainlyEqual(a, b) ? Verdict.HOLDS : Verdict.mismatch(problem, 0, leftAxis, 1, rightAxis);
  }

  static Dim product(List<Dim> dims) {
    Dim result = Shape.known(1);
    for (Dim dim : dims) {
      result = DimArithmetic.multiply(result, dim);
    }
    return result;
  }
}
