package dev.kiln.exporter.lowering;

import dev.kiln.graph.DataType;
import dev.kiln.graph.Value;

/**
 * A torch tensor during export: its ONNX value, element type and rank (the lowerings need ranks for negative
 * dims and permutations; sizes stay symbolic). Small constants also carry their values, so arithmetic on them
 * folds at export time instead of becoming nodes, and a cast of a constant is a new constant.
 */
public final class TensorValue {
  private Value value;
  private final DataType dataType;
  private final int rank;
  private final long[] dims;
  private final double[] constant;

  private TensorValue(Value value, DataType dataType, int rank, long[] dims, double[] constant) {
    this.value = value;
    this.dataType = dataType;
    this.rank = rank;
    this.dims = dims;
    this.constant = constant;
  }

  public static TensorValue of(Value value, DataType dataType, int rank) {
    return new TensorValue(value, dataType, rank, null, null);
  }

  /** A constant known at export time; its ONNX value is made when first used. */
  public static TensorValue constant(DataType dataType, long[] dims, double[] values) {
    return new TensorValue(null, dataType, dims.length, dims, values);
  }

  public boolean isConstant() {
    return constant != null;
  }

  public double[] constantValues() {
    return constant;
  }

  public long[] constantDims() {
    return dims;
  }

  public DataType dataType() {
    return dataType;
  }

  /** The rank, or -1 when not known (a generic module's input passed straight through). */
  public int rankOrUnknown() {
    return rank;
  }

  /** The rank; a generic module's input has none until --traced-shape gives it, and an op that needs it says so. */
  public int rank() {
    if (rank < 0) {
      throw new LoweringException("the rank of input '" + (value == null ? "?" : value.name())
          + "' is not known for a generic module (pass --traced-shape " + (value == null ? "INPUT" : value.name()) + "=AxBx..)");
    }
    return rank;
  }

  public Value value(Emitter emitter) {
    if (value == null) {
      value = emitter.constant(dataType, dims, constant);
    }
    return value;
  }

  /** The value, for lowerings that already know it was made (inputs, op results). */
  public Value valueOrNull() {
    return value;
  }
}
