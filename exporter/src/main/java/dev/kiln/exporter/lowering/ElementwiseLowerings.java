package dev.kiln.exporter.lowering;

import dev.kiln.graph.Attribute;
import dev.kiln.graph.DataType;
import dev.kiln.graph.OpType;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Value;
import java.util.List;
import java.util.function.DoubleBinaryOperator;

/** Arithmetic, comparisons and activations: one small lowering each, with torch's type promotion. */
final class ElementwiseLowerings {
  private ElementwiseLowerings() {}

  /** {@code a ∘ b} with promotion; folded when both sides are constants. */
  static TensorValue binary(OpType type, Object left, Object right, DataType resultType, DoubleBinaryOperator fold, Emitter emitter) {
    TensorValue a = Values.castTo(left, resultType, emitter);
    TensorValue b = Values.castTo(right, resultType, emitter);
    // Size arithmetic (a traced size times or plus an integer constant): the constant may be a baked size.
    if (!resultType.isFloatingPoint() && a.rank() == 0 && b.rank() == 0 && a.isConstant() != b.isConstant()) {
      emitter.bakedConstants().sizeConstant((long) (a.isConstant() ? a : b).constantValues()[0]);
    }
    if (a.isConstant() && b.isConstant() && fold != null && (a.constantValues().length == 1 || b.constantValues().length == 1)) {
      // Folded in the result type's precision, as torch computed it when it traced (a float32 product is the
      // same bits in Java), so timestep frequencies match the eager module exactly.
      TensorValue larger = a.constantValues().length >= b.constantValues().length ? a : b;
      double[] values = new double[larger.constantValues().length];
      for (int index = 0; index < values.length; index++) {
        double first = a.constantValues()[a.constantValues().length == 1 ? 0 : index];
        double second = b.constantValues()[b.constantValues().length == 1 ? 0 : index];
        values[index] = round(fold.applyAsDouble(first, second), resultType);
      }
      long[] dims = a.rank() >= b.rank() ? a.constantDims() : b.constantDims();
      return Values.cast(TensorValue.constant(DataType.DOUBLE, dims, values), resultType, emitter);
    }
    Value result = emitter.op(type, List.of(a.value(emitter), b.value(emitter)));
    return TensorValue.of(result, resultType, Math.max(a.rank(), b.rank()));
  }

  static Object add(Arguments arguments, Emitter emitter) {
    return addOrSub(Onnx.ADD, arguments, emitter, Double::sum);
  }

  static Object sub(Arguments arguments, Emitter emitter) {
    return addOrSub(Onnx.SUB, arguments, emitter, (a, b) -> a - b);
  }

  private static Object addOrSub(OpType type, Arguments arguments, Emitter emitter, DoubleBinaryOperator fold) {
    Object other = arguments.get("other");
    double alpha = arguments.constantDouble("alpha");
    DataType resultType = Values.promote(arguments.get("self"), other);
    if (alpha != 1) {
      other = mul(other, alpha, emitter);
    }
    return binary(type, arguments.get("self"), other, resultType, fold, emitter);
  }

  static TensorValue mul(Object left, Object right, Emitter emitter) {
    return binary(Onnx.MUL, left, right, Values.promote(left, right), (a, b) -> a * b, emitter);
  }

  static Object mul(Arguments arguments, Emitter emitter) {
    return mul(arguments.get("self"), arguments.get("other"), emitter);
  }

  static Object div(Arguments arguments, Emitter emitter) {
    Object left = arguments.get("self");
    Object right = arguments.get("other");
    DataType promoted = Values.promote(left, right);
    Object mode = arguments.get("rounding_mode");
    if (mode instanceof String rounding) {
      if (!promoted.isFloatingPoint() && rounding.equals("trunc")) {
        return binary(Onnx.DIV, left, right, promoted, (a, b) -> (long) (a / b), emitter);
      }
      if (!promoted.isFloatingPoint() && rounding.equals("floor")) {
        return floorDivide(left, right, promoted, emitter);
      }
      TensorValue quotient = binary(Onnx.DIV, left, right, promoted, (a, b) -> a / b, emitter);
      OpType round = rounding.equals("floor") ? Onnx.FLOOR : null;
      if (round == null) {
        throw new LoweringException("div rounding_mode '" + rounding + "' on floating tensors");
      }
      return TensorValue.of(emitter.op(round, quotient.value(emitter)), promoted, quotient.rank());
    }
    // True division: integers divide as floats.
    DataType resultType = promoted.isFloatingPoint() ? promoted : DataType.FLOAT;
    return binary(Onnx.DIV, left, right, resultType, (a, b) -> a / b, emitter);
  }

  static Object floorDivide(Arguments arguments, Emitter emitter) {
    Object left = arguments.get("self");
    Object right = arguments.get("other");
    return floorDivide(left, right, Values.promote(left, right), emitter);
  }

  /** Integer sizes divide exactly or positively in traced code; ONNX's truncating Div equals floor there. */
  private static TensorValue floorDivide(Object left, Object right, DataType type, Emitter emitter) {
    if (type.isFloatingPoint()) {
      TensorValue quotient = binary(Onnx.DIV, left, right, type, (a, b) -> Math.floor(a / b), emitter);
      return quotient.isConstant() ? quotient : TensorValue.of(emitter.op(Onnx.FLOOR, quotient.value(emitter)), type, quotient.rank());
    }
    return binary(Onnx.DIV, left, right, type, (a, b) -> Math.floor(a / b), emitter);
  }

  static Object pow(Arguments arguments, Emitter emitter) {
    Object base = arguments.get("self");
    Object exponent = arguments.get("exponent");
    TensorValue a = Values.asTensor(base, emitter);
    DataType type = Values.promote(base, exponent);
    // A float exponent makes an integer base float (torch: pow(long tensor, -0.5) is float32).
    TensorValue b = Values.castTo(exponent, type, emitter);
    TensorValue left = Values.cast(a, type, emitter);
    return TensorValue.of(emitter.op(Onnx.POW, List.of(left.value(emitter), b.value(emitter))), type, Math.max(left.rank(), b.rank()));
  }

  static Object compare(OpType type, Arguments arguments, Emitter emitter) {
    Object left = arguments.get("self");
    Object right = arguments.get("other");
    DataType common = Values.promote(left, right);
    TensorValue a = Values.castTo(left, common, emitter);
    TensorValue b = Values.castTo(right, common, emitter);
    return TensorValue.of(emitter.op(type, List.of(a.value(emitter), b.value(emitter))), DataType.BOOL, Math.max(a.rank(), b.rank()));
  }

  static double round(double value, DataType type) {
    return type == DataType.FLOAT ? (float) value : value;
  }

  /** A unary op on a constant folds in Java (float32 results rounded from double, as close as torch's kernels). */
  static Object unary(OpType type, java.util.function.DoubleUnaryOperator fold, Arguments arguments, Emitter emitter) {
    TensorValue input = arguments.tensor("self");
    if (input.isConstant() && input.dataType().isFloatingPoint()) {
      double[] values = new double[input.constantValues().length];
      for (int index = 0; index < values.length; index++) {
        values[index] = round(fold.applyAsDouble(input.constantValues()[index]), input.dataType());
      }
      return TensorValue.constant(input.dataType(), input.constantDims(), values);
    }
    return unary(type, arguments, emitter);
  }

  static Object unary(OpType type, Arguments arguments, Emitter emitter) {
    TensorValue input = arguments.tensor("self");
    return TensorValue.of(emitter.op(type, input.value(emitter)), input.dataType(), input.rank());
  }

  /** {@code Sigmoid(x) → Mul(x, ·)}, torch's SiLU export. */
  static Object silu(Arguments arguments, Emitter emitter) {
    TensorValue input = arguments.tensor("self");
    Value sigmoid = emitter.op(Onnx.SIGMOID, input.value(emitter));
    return TensorValue.of(emitter.op(Onnx.MUL, List.of(input.value(emitter), sigmoid)), input.dataType(), input.rank());
  }

  /**
   * Exact GELU as torch exports it, {@code Div(√2) → Erf → Add(1) → Mul(x) → Mul(0.5)}; the tanh form as
   * {@code 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))}.
   */
  static Object gelu(Arguments arguments, Emitter emitter) {
    TensorValue input = arguments.tensor("self");
    DataType type = input.dataType();
    Value x = input.value(emitter);
    String approximate = String.valueOf(arguments.get("approximate"));
    Value inner;
    if (approximate.equals("none")) {
      Value scaled = emitter.op(Onnx.DIV, List.of(x, emitter.scalarFloat(type, Math.sqrt(2))));
      inner = emitter.op(Onnx.ERF, scaled);
    } else if (approximate.equals("tanh")) {
      Value cube = emitter.op(Onnx.POW, List.of(x, emitter.scalarFloat(type, 3)));
      Value sum = emitter.op(Onnx.ADD, List.of(x, emitter.op(Onnx.MUL, List.of(cube, emitter.scalarFloat(type, 0.044715)))));
      inner = emitter.op(Onnx.TANH, emitter.op(Onnx.MUL, List.of(sum, emitter.scalarFloat(type, Math.sqrt(2 / Math.PI)))));
    } else {
      throw new LoweringException("gelu approximate='" + approximate + "'");
    }
    Value onePlus = emitter.op(Onnx.ADD, List.of(inner, emitter.scalarFloat(type, 1)));
    Value product = emitter.op(Onnx.MUL, List.of(x, onePlus));
    return TensorValue.of(emitter.op(Onnx.MUL, List.of(product, emitter.scalarFloat(type, 0.5))), type, input.rank());
  }

  static Object softmax(Arguments arguments, Emitter emitter) {
    TensorValue input = arguments.tensor("self");
    if (!arguments.isNone("dtype")) {
      input = Values.cast(input, Values.scalarType(arguments.constantLong("dtype")), emitter);
    }
    int axis = Values.normalizeDim(arguments.constantLong("dim"), input.rank());
    return TensorValue.of(emitter.op(Onnx.SOFTMAX, List.of(input.value(emitter)), Attribute.ofInt("axis", axis)), input.dataType(),
        input.rank());
  }

  /** {@code masked_fill(x, mask, v)} ⇒ {@code Where(mask, v, x)}. */
  static Object maskedFill(Arguments arguments, Emitter emitter) {
    TensorValue input = arguments.tensor("self");
    TensorValue mask = Values.castTo(arguments.get("mask"), DataType.BOOL, emitter);
    TensorValue fill = Values.castTo(arguments.get("value"), input.dataType(), emitter);
    Value result = emitter.op(Onnx.WHERE, List.of(mask.value(emitter), fill.value(emitter), input.value(emitter)));
    return TensorValue.of(result, input.dataType(), Math.max(input.rank(), mask.rank()));
  }

  static Object where(Arguments arguments, Emitter emitter) {
    Object left = arguments.get("self");
    Object right = arguments.get("other");
    DataType type = Values.promote(left, right);
    TensorValue condition = Values.castTo(arguments.get("condition"), DataType.BOOL, emitter);
    TensorValue a = Values.castTo(left, type, emitter);
    TensorValue b = Values.castTo(right, type, emitter);
    Value result = emitter.op(Onnx.WHERE, List.of(condition.value(emitter), a.value(emitter), b.value(emitter)));
    return TensorValue.of(result, type, Math.max(condition.rank(), Math.max(a.rank(), b.rank())));
  }
}
