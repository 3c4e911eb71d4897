package dev.kiln.optimizer.folding;

import dev.kiln.common.HalfFloats;
import dev.kiln.graph.DataType;
import dev.kiln.graph.Tensor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * A constant tensor decoded into Java arrays for evaluation: floating-point types as {@code double} (each value
 * already rounded to its own type), integer and bool types as {@code long} (int64 needs all 64 bits: Slice's
 * "to the end" is {@code Long.MAX_VALUE}). Exactly one of {@code reals} and {@code integers} is set.
 */
public record HostTensor(DataType type, long[] dims, double[] reals, long[] integers) {
  public HostTensor {
    dims = dims.clone();
    if ((reals == null) == (integers == null)) {
      throw new IllegalArgumentException("a host tensor holds reals or integers, exactly one");
    }
  }

  /** The dimensions (a copy: the record's array never leaks). */
  @Override
  public long[] dims() {
    return dims.clone();
  }

  /** Whether {@code type} is evaluated (floating-point, integer and bool; not strings, complex, 4/8-bit floats). */
  public static boolean supports(DataType type) {
    return isReal(type) || isInteger(type);
  }

  static boolean isReal(DataType type) {
    return type == DataType.FLOAT || type == DataType.DOUBLE || type == DataType.FLOAT16 || type == DataType.BFLOAT16;
  }

  static boolean isInteger(DataType type) {
    return switch (type) {
      case INT8, INT16, INT32, INT64, UINT8, UINT16, UINT32, UINT64, BOOL -> true;
      default -> false;
    };
  }

  public static HostTensor ofLongs(DataType type, long[] dims, long[] values) {
    return new HostTensor(type, dims, null, values);
  }

  public static HostTensor ofDoubles(DataType type, long[] dims, double[] values) {
    return new HostTensor(type, dims, values, null);
  }

  /** An int64 vector (what Shape answers). */
  public static HostTensor int64Vector(long... values) {
    return ofLongs(DataType.INT64, new long[] {values.length}, values);
  }

  /** The decoded values of {@code tensor}, or null for an element type this evaluator does not cover. */
  public static HostTensor of(Tensor tensor) {
    DataType type = tensor.dataType();
    if (isReal(type)) {
      return ofDoubles(type, tensor.dims(), tensor.doubles());
    }
    if (isInteger(type)) {
      return ofLongs(type, tensor.dims(), tensor.longs());
    }
    return null;
  }

  public boolean isReal() {
    return reals != null;
  }

  public int count() {
    return isReal() ? reals.length : integers.length;
  }

  public int rank() {
    return dims.length;
  }

  /** Element {@code index} as a double (integers widened). */
  public double real(int index) {
    return isReal() ? reals[index] : integers[index];
  }

  /** Element {@code index} as a long (reals truncated toward zero, as Cast does). */
  public long integer(int index) {
    return isReal() ? (long) reals[index] : integers[index];
  }

  /** Every element as a long (for shapes, axes, indices). */
  public long[] longs() {
    if (!isReal()) {
      return integers.clone();
    }
    long[] values = new long[reals.length];
    for (int i = 0; i < values.length; i++) {
      values[i] = (long) reals[i];
    }
    return values;
  }

  /** The same elements with other dims (Reshape, Squeeze, Unsqueeze share the data). */
  public HostTensor withDims(long[] newDims) {
    return new HostTensor(type, newDims, reals, integers);
  }

  /** A tensor of {@code type} and {@code dims} whose element i is {@code source}'s element {@code from[i]}. */
  public HostTensor gathered(long[] newDims, int[] from) {
    if (isReal()) {
      double[] out = new double[from.length];
      for (int i = 0; i < from.length; i++) {
        out[i] = reals[from[i]];
      }
      return ofDoubles(type, newDims, out);
    }
    long[] out = new long[from.length];
    for (int i = 0; i < from.length; i++) {
      out[i] = integers[from[i]];
    }
    return ofLongs(type, newDims, out);
  }

  /** {@code value} as {@code type} stores it: float rounding, integer wrap-around (uint8 255 + 1 = 0), bool 0/1. */
  static double roundReal(DataType type, double value) {
    return switch (type) {
      case FLOAT -> (float) value;
      case FLOAT16 -> HalfFloats.fromFloat16(HalfFloats.toFloat16((float) value));
      case BFLOAT16 -> HalfFloats.fromBFloat16(HalfFloats.toBFloat16((float) value));
      default -> value;
    };
  }

  static long wrapInteger(DataType type, long value) {
    return switch (type) {
      case INT8 -> (byte) value;
      case INT16 -> (short) value;
      case INT32 -> (int) value;
      case UINT8 -> value & 0xFFL;
      case UINT16 -> value & 0xFFFFL;
      case UINT32 -> value & 0xFFFF_FFFFL;
      case BOOL -> value != 0 ? 1 : 0;
      default -> value;
    };
  }

  /** Elements in the tensor for {@code dims} (overflow is an error, not a wrap). */
  public static long elementCount(long[] dims) {
    long count = 1;
    for (long dim : dims) {
      if (dim < 0) {
        throw new EvaluationException("negative dimension " + dim + " in " + Arrays.toString(dims));
      }
      count = Math.multiplyExact(count, dim);
    }
    return count;
  }

  /** Bytes the tensor takes when stored. */
  public long byteSize() {
    return type.byteSize(count());
  }

  /** The graph tensor holding these values (raw little-endian encoding). */
  public Tensor toTensor() {
    int count = count();
    ByteBuffer data = ByteBuffer.allocate(Math.toIntExact(type.byteSize(count))).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < count; i++) {
      switch (type) {
        case FLOAT -> data.putFloat((float) reals[i]);
        case DOUBLE -> data.putDouble(reals[i]);
        case FLOAT16 -> data.putShort(HalfFloats.toFloat16((float) reals[i]));
        case BFLOAT16 -> data.putShort(HalfFloats.toBFloat16((float) reals[i]));
        case INT8, UINT8, BOOL -> data.put((byte) integers[i]);
        case INT16, UINT16 -> data.putShort((short) integers[i]);
        case INT32, UINT32 -> data.putInt((int) integers[i]);
        case INT64, UINT64 -> data.putLong(integers[i]);
        default -> throw new IllegalStateException("cannot encode " + type);
      }
    }
    data.flip();
    return Tensor.ofBytes(type, dims, data);
  }

  @Override
  public boolean equals(Object other) {
    return other instanceof HostTensor that && type == that.type && Arrays.equals(dims, that.dims)
        && Arrays.equals(reals, that.reals) && Arrays.equals(integers, that.integers);
  }

  @Override
  public int hashCode() {
    return Arrays.hashCode(dims) * 31 + type.hashCode();
  }

  @Override
  public String toString() {
    return type + Arrays.toString(dims);
  }
}
