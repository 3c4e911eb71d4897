package dev.kiln.graph;

import com.google.protobuf.ByteString;
import dev.kiln.common.HalfFloats;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.WritableByteChannel;
import java.util.Arrays;
import java.util.List;
import java.util.function.Supplier;

/**
 * Constant tensor data: an initializer or a tensor-valued attribute. Tensors are immutable; a pass that
 * changes values makes a new tensor. Three storages:
 *
 * <ul>
 *   <li>{@link InlineTensor} — inside the .onnx protobuf (raw_data or typed fields), aliased, not copied;
 *   <li>{@link ExternalTensor} — a byte range of a data file next to the model, mapped lazily;
 *   <li>{@link ComputedTensor} — made in memory by Kiln (folding, precision conversion), produced on demand.
 * </ul>
 *
 * Whatever the storage, {@link #bytes()} gives the raw little-endian ONNX encoding and {@link #floats()},
 * {@link #longs()}, {@link #ints()} decode numeric values.
 */
public sealed interface Tensor permits InlineTensor, ExternalTensor, ComputedTensor {
  DataType dataType();

  /** The dimensions (a copy). */
  long[] dims();

  default Shape shape() {
    return Shape.of(dims());
  }

  default long elementCount() {
    long count = 1;
    for (long dim : dims()) {
      count = Math.multiplyExact(count, dim);
    }
    return count;
  }

  /** Size of the raw little-endian encoding in bytes (for STRING, the sum of the string lengths). */
  long byteSize();

  /**
   * The raw little-endian encoding (read-only, position 0, little-endian order). Tensors over 2 GiB
   * cannot be one buffer; stream those with {@link #writeTo}.
   */
  ByteBuffer bytes();

  /**
   * The raw encoding as a buffer the caller uses once (decoding, transposing, packing). Unlike {@link #bytes()} an
   * external tensor answers a heap copy read with positional file reads, never a memory map: touched pages of a
   * map stay in the process's resident set until the map is collected, so computing every conv filter of a
   * full-size UNet from maps kept ~2.5 GB of the weight file resident.
   */
  default ByteBuffer readBytes() {
    return bytes();
  }

  /** Streams the raw encoding to {@code channel}, for tensors of any size. */
  default void writeTo(WritableByteChannel channel) throws IOException {
    ByteBuffer data = bytes();
    while (data.hasRemaining()) {
      channel.write(data);
    }
  }

  /** The elements of a STRING tensor. */
  default List<ByteString> strings() {
    throw new IllegalStateException("tensor of " + dataType() + " holds no strings");
  }

  /** Every element converted to float (FLOAT16/BFLOAT16 decoded, integers widened, doubles narrowed). */
  default float[] floats() {
    return TensorValues.floats(dataType(), readBytes(), checkedCount());
  }

  /** Every element as long; integer and bool types only. */
  default long[] longs() {
    return TensorValues.longs(dataType(), readBytes(), checkedCount());
  }

  /** Every element as int (64-bit values must fit). */
  default int[] ints() {
    long[] values = longs();
    int[] narrow = new int[values.length];
    for (int i = 0; i < values.length; i++) {
      if (values[i] != (int) values[i]) {
        throw new ArithmeticException("element " + i + " = " + values[i] + " does not fit an int");
      }
      narrow[i] = (int) values[i];
    }
    return narrow;
  }

  /** Every element as double. */
  default double[] doubles() {
    return TensorValues.doubles(dataType(), readBytes(), checkedCount());
  }

  private int checkedCount() {
    long count = elementCount();
    if (count > Integer.MAX_VALUE - 8) {
      throw new IllegalStateException("tensor of " + count + " elements is too large for a Java array");
    }
    return (int) count;
  }

  // ----- factories for tensors made in memory -----

  static ComputedTensor ofFloats(long[] dims, float... values) {
    ByteBuffer data = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    data.asFloatBuffer().put(values);
    return ofBytes(DataType.FLOAT, dims, data);
  }

  static ComputedTensor ofDoubles(long[] dims, double... values) {
    ByteBuffer data = ByteBuffer.allocate(values.length * 8).order(ByteOrder.LITTLE_ENDIAN);
    data.asDoubleBuffer().put(values);
    return ofBytes(DataType.DOUBLE, dims, data);
  }

  static ComputedTensor ofLongs(long[] dims, long... values) {
    ByteBuffer data = ByteBuffer.allocate(values.length * 8).order(ByteOrder.LITTLE_ENDIAN);
    data.asLongBuffer().put(values);
    return ofBytes(DataType.INT64, dims, data);
  }

  static ComputedTensor ofInts(long[] dims, int... values) {
    ByteBuffer data = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    data.asIntBuffer().put(values);
    return ofBytes(DataType.INT32, dims, data);
  }

  /** FLOAT16 tensor holding the nearest half-precision value of each float. */
  static ComputedTensor ofFloat16(long[] dims, float... values) {
    ByteBuffer data = ByteBuffer.allocate(values.length * 2).order(ByteOrder.LITTLE_ENDIAN);
    for (float value : values) {
      data.putShort(HalfFloats.toFloat16(value));
    }
    data.flip();
    return ofBytes(DataType.FLOAT16, dims, data);
  }

  /** BFLOAT16 tensor holding the nearest bfloat16 value of each float. */
  static ComputedTensor ofBFloat16(long[] dims, float... values) {
    ByteBuffer data = ByteBuffer.allocate(values.length * 2).order(ByteOrder.LITTLE_ENDIAN);
    for (float value : values) {
      data.putShort(HalfFloats.toBFloat16(value));
    }
    data.flip();
    return ofBytes(DataType.BFLOAT16, dims, data);
  }

  /** A STRING tensor (kept in ONNX's string_data form). */
  static InlineTensor ofStrings(long[] dims, List<String> values) {
    dev.kiln.graph.proto.OnnxProto.TensorProto.Builder proto =
        dev.kiln.graph.proto.OnnxProto.TensorProto.newBuilder().setDataType(DataType.STRING.number());
    for (long dim : dims) {
      proto.addDims(dim);
    }
    for (String value : values) {
      proto.addStringData(ByteString.copyFromUtf8(value));
    }
    return new InlineTensor(proto.build(), DataType.STRING);
  }

  /** A tensor over raw little-endian bytes (copied, so later changes to {@code data} do not leak in). */
  static ComputedTensor ofBytes(DataType type, long[] dims, ByteBuffer data) {
    ByteBuffer copy = ByteBuffer.allocate(data.remaining()).order(ByteOrder.LITTLE_ENDIAN);
    copy.put(data.duplicate());
    copy.flip();
    ByteBuffer frozen = copy.asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
    return new ComputedTensor(type, dims, () -> frozen);
  }

  static ComputedTensor ofBytes(DataType type, long[] dims, byte[] data) {
    return ofBytes(type, dims, ByteBuffer.wrap(data));
  }

  /**
   * A tensor whose bytes are produced when first needed (e.g. an fp16 copy of an external weight that is
   * only materialized while the writer streams it). The supplier must give the same bytes every time.
   */
  static ComputedTensor computed(DataType type, long[] dims, Supplier<ByteBuffer> bytes) {
    return new ComputedTensor(type, dims, bytes);
  }

  /**
   * A computed tensor that also streams itself: {@code writer} writes exactly the bytes {@code bytes} answers, in
   * bounded pieces, so a model writer never holds it whole (fp16 conversion of a large external weight).
   */
  static ComputedTensor streamed(DataType type, long[] dims, Supplier<ByteBuffer> bytes, ComputedTensor.Streamer writer) {
    return new ComputedTensor(type, dims, bytes, writer);
  }

  /** Raw bytes and metadata equal: storage does not matter. */
  static boolean contentEquals(Tensor a, Tensor b) {
    if (a.dataType() != b.dataType() || !Arrays.equals(a.dims(), b.dims())) {
      return false;
    }
    if (a.dataType() == DataType.STRING) {
      return a.strings().equals(b.strings());
    }
    return a.byteSize() == b.byteSize() && TensorValues.sameBytes(a, b);
  }
}
