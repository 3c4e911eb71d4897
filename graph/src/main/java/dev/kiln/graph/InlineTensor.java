package dev.kiln.graph;

import com.google.protobuf.ByteString;
import dev.kiln.graph.proto.OnnxProto.TensorProto;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;

/**
 * A tensor stored inside the model protobuf. It keeps the TensorProto it was read from — whose raw_data
 * aliases the memory-mapped model file rather than copying it — so writing it back reproduces every
 * field (typed storage, doc string, metadata, unknown fields) exactly.
 */
public final class InlineTensor implements Tensor {
  private final TensorProto proto;
  private final DataType dataType;
  private final long[] dims;

  InlineTensor(TensorProto proto, DataType dataType) {
    this.proto = proto;
    this.dataType = dataType;
    this.dims = new long[proto.getDimsCount()];
    for (int i = 0; i < dims.length; i++) {
      dims[i] = proto.getDims(i);
    }
  }

  /** The protobuf this tensor was read from (name included), for the writer. */
  TensorProto proto() {
    return proto;
  }

  @Override
  public DataType dataType() {
    return dataType;
  }

  @Override
  public long[] dims() {
    return dims.clone();
  }

  @Override
  public long byteSize() {
    if (dataType == DataType.STRING) {
      long total = 0;
      for (ByteString string : proto.getStringDataList()) {
        total += string.size();
      }
      return total;
    }
    if (proto.hasRawData()) {
      return proto.getRawData().size();
    }
    return dataType.byteSize(elementCount());
  }

  /** True when the values sit in raw_data rather than in a typed field. */
  public boolean usesRawData() {
    return proto.hasRawData();
  }

  @Override
  public List<ByteString> strings() {
    if (dataType != DataType.STRING) {
      return Tensor.super.strings();
    }
    return proto.getStringDataList();
  }

  @Override
  public ByteBuffer bytes() {
    if (proto.hasRawData()) {
      return proto.getRawData().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
    }
    return typedFieldsAsRaw().asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
  }

  /** Re-encodes a typed field (float_data, int32_data, ...) as the raw little-endian bytes ONNX defines. */
  private ByteBuffer typedFieldsAsRaw() {
    long count = elementCount();
    ByteBuffer out = ByteBuffer.allocate(Math.toIntExact(dataType.byteSize(count))).order(ByteOrder.LITTLE_ENDIAN);
    switch (dataType) {
      case FLOAT, COMPLEX64 -> proto.getFloatDataList().forEach(out::putFloat);
      case DOUBLE, COMPLEX128 -> proto.getDoubleDataList().forEach(out::putDouble);
      case INT64 -> proto.getInt64DataList().forEach(out::putLong);
      case UINT64 -> proto.getUint64DataList().forEach(out::putLong);
      case UINT32 -> proto.getUint64DataList().forEach(value -> out.putInt((int) (long) value));
      case INT32 -> proto.getInt32DataList().forEach(out::putInt);
      case INT16, UINT16, FLOAT16, BFLOAT16 -> proto.getInt32DataList().forEach(value -> out.putShort((short) (int) value));
      case INT8, UINT8, BOOL, FLOAT8E4M3FN, FLOAT8E4M3FNUZ, FLOAT8E5M2, FLOAT8E5M2FNUZ, FLOAT8E8M0 ->
          proto.getInt32DataList().forEach(value -> out.put((byte) (int) value));
      case INT4, UINT4, FLOAT4E2M1 -> {
        // Each int32 entry carries two packed 4-bit elements in its low byte.
        for (int value : proto.getInt32DataList()) {
          if (out.hasRemaining()) {
            out.put((byte) value);
          }
        }
      }
      default -> throw new IllegalStateException("tensor " + proto.getName() + " of " + dataType + " has no raw form");
    }
    if (out.position() != out.capacity()) {
      throw new IllegalStateException(
          "tensor '" + proto.getName() + "' holds " + out.position() + " bytes of values, its shape needs " + out.capacity());
    }
    out.flip();
    return out;
  }

  @Override
  public String toString() {
    return "InlineTensor(" + dataType + Shape.of(dims) + ")";
  }
}
