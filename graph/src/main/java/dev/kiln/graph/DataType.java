package dev.kiln.graph;

/** ONNX element types with their wire numbers and bit widths (STRING has no fixed width). */
public enum DataType {
  UNDEFINED(0, 0),
  FLOAT(1, 32),
  UINT8(2, 8),
  INT8(3, 8),
  UINT16(4, 16),
  INT16(5, 16),
  INT32(6, 32),
  INT64(7, 64),
  STRING(8, 0),
  BOOL(9, 8),
  FLOAT16(10, 16),
  DOUBLE(11, 64),
  UINT32(12, 32),
  UINT64(13, 64),
  COMPLEX64(14, 64),
  COMPLEX128(15, 128),
  BFLOAT16(16, 16),
  FLOAT8E4M3FN(17, 8),
  FLOAT8E4M3FNUZ(18, 8),
  FLOAT8E5M2(19, 8),
  FLOAT8E5M2FNUZ(20, 8),
  UINT4(21, 4),
  INT4(22, 4),
  FLOAT4E2M1(23, 4),
  FLOAT8E8M0(24, 8);

  private static final DataType[] BY_NUMBER = new DataType[25];

  static {
    for (DataType type : values()) {
      BY_NUMBER[type.number] = type;
    }
  }

  private final int number;
  private final int bits;

  DataType(int number, int bits) {
    this.number = number;
    this.bits = bits;
  }

  /** The number used on the wire (TensorProto.data_type, TypeProto.Tensor.elem_type). */
  public int number() {
    return number;
  }

  /** Bits per element; 0 for STRING and UNDEFINED, which have no fixed width. */
  public int bitWidth() {
    return bits;
  }

  /** Bytes per element for types of at least 8 bits; 4-bit types answer 0 (use {@link #byteSize}). */
  public int elementSize() {
    return bits / 8;
  }

  /** Bytes that {@code elements} values occupy as raw little-endian data (4-bit types pack two per byte). */
  public long byteSize(long elements) {
    if (bits == 0) {
      throw new IllegalStateException(this + " has no fixed element size");
    }
    return (elements * bits + 7) / 8;
  }

  public boolean hasFixedSize() {
    return bits > 0;
  }

  public boolean isFloatingPoint() {
    return switch (this) {
      case FLOAT, DOUBLE, FLOAT16, BFLOAT16, FLOAT8E4M3FN, FLOAT8E4M3FNUZ, FLOAT8E5M2, FLOAT8E5M2FNUZ, FLOAT4E2M1, FLOAT8E8M0 -> true;
      default -> false;
    };
  }

  public boolean isInteger() {
    return switch (this) {
      case UINT8, INT8, UINT16, INT16, INT32, INT64, UINT32, UINT64, UINT4, INT4 -> true;
      default -> false;
    };
  }

  /** The type with this wire number, or null when the number is not one this version of Kiln knows. */
  public static DataType fromNumberOrNull(int number) {
    return number >= 0 && number < BY_NUMBER.length ? BY_NUMBER[number] : null;
  }

  /** The type with this wire number; unknown numbers are an {@link IllegalArgumentException}. */
  public static DataType fromNumber(int number) {
    DataType type = fromNumberOrNull(number);
    if (type == null) {
      throw new IllegalArgumentException("unknown ONNX data type number " + number);
    }
    return type;
  }
}
