package dev.kiln.exporter.lowering;

import dev.kiln.exporter.archive.PickleObjects;
import dev.kiln.graph.Attribute;
import dev.kiln.graph.DataType;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Value;
import java.util.ArrayList;
import java.util.List;

/** Conversions between the interpreter's Python values and graph values, and torch's type promotion. */
public final class Values {
  private Values() {}

  /** torch's ScalarType numbers as traced code writes them ({@code dtype=6}). */
  public static DataType scalarType(long code) {
    return switch ((int) code) {
      case 0 -> DataType.UINT8;
      case 1 -> DataType.INT8;
      case 2 -> DataType.INT16;
      case 3 -> DataType.INT32;
      case 4 -> DataType.INT64;
      case 5 -> DataType.FLOAT16;
      case 6 -> DataType.FLOAT;
      case 7 -> DataType.DOUBLE;
      case 11 -> DataType.BOOL;
      case 15 -> DataType.BFLOAT16;
      default -> throw new LoweringException("torch dtype " + code + " is not supported");
    };
  }

  public static String describe(Object value) {
    if (value == null) {
      return "nothing";
    }
    if (value == PickleObjects.NONE) {
      return "None";
    }
    if (value instanceof TensorValue tensor) {
      return "a rank-" + tensor.rank() + " " + tensor.dataType() + " tensor";
    }
    if (value instanceof SymbolicInt) {
      return "a traced size";
    }
    if (value instanceof ModuleRef module) {
      return "module " + module.path();
    }
    return value.getClass().getSimpleName() + " " + value;
  }

  /** The value of a compile-time integer (an int literal, a bool, or a one-element integral constant). */
  public static Long constantLong(Object value) {
    if (value instanceof Long number) {
      return number;
    }
    if (value instanceof Boolean flag) {
      return flag ? 1L : 0L;
    }
    if (value instanceof TensorValue tensor && tensor.isConstant() && tensor.constantValues().length == 1 && !tensor.dataType().isFloatingPoint()) {
      return (long) tensor.constantValues()[0];
    }
    return null;
  }

  /** A Python int (constant or traced) as a 0-d INT64 graph value. */
  public static Value scalarInt(Object value, Emitter emitter) {
    if (value instanceof SymbolicInt symbolic) {
      return symbolic.value();
    }
    Long constant = constantLong(value);
    if (constant != null) {
      return emitter.scalarLong(constant);
    }
    if (value instanceof TensorValue tensor && tensor.rank() == 0) {
      return cast(tensor, DataType.INT64, emitter).value(emitter);
    }
    throw new LoweringException("expected an integer, got " + describe(value));
  }

  /** A list of Python ints as a 1-D INT64 value: one constant when all are known, else Concat of the pieces. */
  public static Value intList(Object value, Emitter emitter) {
    if (value instanceof TensorValue tensor && tensor.rank() == 1) {
      return cast(tensor, DataType.INT64, emitter).value(emitter);
    }
    if (!(value instanceof List<?> list)) {
      Long single = constantLong(value);
      if (single != null || value instanceof SymbolicInt) {
        return intList(List.of(value), emitter);
      }
      throw new LoweringException("expected a list of integers, got " + describe(value));
    }
    boolean allConstant = true;
    long[] constants = new long[list.size()];
    for (int index = 0; index < list.size(); index++) {
      Long constant = constantLong(list.get(index));
      if (constant == null) {
        allConstant = false;
      } else {
        constants[index] = constant;
        emitter.bakedConstants().sizeConstant(constant);
      }
    }
    if (allConstant) {
      return emitter.constantLongs(constants);
    }
    List<Value> pieces = new ArrayList<>();
    for (Object item : list) {
      Value scalar = scalarInt(item, emitter);
      pieces.add(emitter.op(Onnx.UNSQUEEZE, List.of(scalar, emitter.constantLongs(0))));
    }
    return emitter.op(Onnx.CONCAT, pieces, Attribute.ofInt("axis", 0));
  }

  /** Python scalars and SymInts become 0-d tensors; tensors pass through. */
  public static TensorValue asTensor(Object value, Emitter emitter) {
    if (value instanceof TensorValue tensor) {
      return tensor;
    }
    if (value instanceof SymbolicInt symbolic) {
      return TensorValue.of(symbolic.value(), DataType.INT64, 0);
    }
    if (value instanceof Boolean flag) {
      return TensorValue.constant(DataType.BOOL, new long[0], new double[] {flag ? 1 : 0});
    }
    if (value instanceof Long number) {
      return TensorValue.constant(DataType.INT64, new long[0], new double[] {number});
    }
    if (value instanceof Double number) {
      return TensorValue.constant(DataType.DOUBLE, new long[0], new double[] {number});
    }
    throw new LoweringException("expected a tensor or number, got " + describe(value));
  }

  private static int category(DataType type) {
    if (type == DataType.BOOL) {
      return 0;
    }
    return type.isFloatingPoint() ? 2 : 1;
  }

  /**
   * torch's result type for a binary op: a higher category (bool < integer < floating) wins; within a category a
   * dimensioned tensor wins over a 0-d one, and Python scalars never widen a tensor. A Python float with an
   * integer tensor gives the default dtype, float32.
   */
  public static DataType promote(Object left, Object right) {
    int leftRank = rankClass(left);
    int rightRank = rankClass(right);
    DataType leftType = typeOf(left);
    DataType rightType = typeOf(right);
    int leftCategory = category(leftType);
    int rightCategory = category(rightType);
    if (leftCategory != rightCategory) {
      boolean leftWins = leftCategory > rightCategory;
      DataType winner = leftWins ? leftType : rightType;
      int winnerRank = leftWins ? leftRank : rightRank;
      int loserRank = leftWins ? rightRank : leftRank;
      // A float scalar (or 0-d) meeting a dimensioned integer tensor: the default float type.
      if (winnerRank < loserRank && winner.isFloatingPoint()) {
        return DataType.FLOAT;
      }
      return winner;
    }
    if (leftRank != rightRank) {
      return leftRank > rightRank ? leftType : rightType;
    }
    return leftType.bitWidth() >= rightType.bitWidth() ? leftType : rightType;
  }

  /** 2 for a dimensioned tensor, 1 for a 0-d tensor, 0 for a Python scalar: torch's three priority classes. */
  private static int rankClass(Object value) {
    if (value instanceof TensorValue tensor) {
      return tensor.rank() > 0 ? 2 : 1;
    }
    if (value instanceof SymbolicInt) {
      return 0;
    }
    return 0;
  }

  private static DataType typeOf(Object value) {
    if (value instanceof TensorValue tensor) {
      return tensor.dataType();
    }
    if (value instanceof Double) {
      return DataType.DOUBLE;
    }
    if (value instanceof Boolean) {
      return DataType.BOOL;
    }
    return DataType.INT64;
  }

  /** A cast: constants are converted at export time, other values get a Cast node (none if the type matches). */
  public static TensorValue cast(TensorValue tensor, DataType type, Emitter emitter) {
    if (tensor.dataType() == type) {
      return tensor;
    }
    if (tensor.isConstant()) {
      double[] values = tensor.constantValues().clone();
      for (int index = 0; index < values.length; index++) {
        if (!type.isFloatingPoint()) {
          values[index] = type == DataType.BOOL ? (values[index] != 0 ? 1 : 0) : (double) (long) values[index];
        } else if (type == DataType.FLOAT) {
          values[index] = (float) values[index];
        }
      }
      return TensorValue.constant(type, tensor.constantDims(), values);
    }
    Value cast = emitter.op(Onnx.CAST, List.of(tensor.value(emitter)), Attribute.ofInt("to", type.number()));
    return TensorValue.of(cast, type, tensor.rank());
  }

  public static TensorValue castTo(Object value, DataType type, Emitter emitter) {
    return cast(asTensor(value, emitter), type, emitter);
  }

  public static int normalizeDim(long dim, int rank) {
    long normalized = dim < 0 ? dim + rank : dim;
    if (normalized < 0 || normalized >= Math.max(rank, 1)) {
      throw new LoweringException("dim " + dim + " is out of range for a rank-" + rank + " tensor");
    }
    return (int) normalized;
  }
}
