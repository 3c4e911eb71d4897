package dev.kiln.graph;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.google.protobuf.ByteString;
import dev.kiln.common.HalfFloats;
import dev.kiln.graph.proto.OnnxProto.TensorProto;
import org.junit.jupiter.api.Test;

/** Half-precision conversions and decoding tensors from any storage into Java arrays. */
class TensorValuesTest {
  @Test
  void everyFloat16BitPatternSurvivesFloatAndBack() {
    for (int bits = 0; bits < 0x10000; bits++) {
      float value = HalfFloats.fromFloat16((short) bits);
      if (Float.isNaN(value)) {
        assertEquals(0x7c00, bits & 0x7c00, "NaN only from an all-ones exponent");
        continue;
      }
      assertEquals((short) bits, HalfFloats.toFloat16(value), "pattern " + Integer.toHexString(bits));
    }
  }

  @Test
  void float16RoundsToNearestEven() {
    assertEquals((short) 0x3c00, HalfFloats.toFloat16(1 + 0x1p-11f), "halfway between 1 and the next half rounds to even");
    assertEquals((short) 0x3c02, HalfFloats.toFloat16(1 + 3 * 0x1p-11f), "halfway above an odd mantissa rounds up");
    assertEquals((short) 0x7bff, HalfFloats.toFloat16(65504f));
    assertEquals((short) 0x7bff, HalfFloats.toFloat16(65519f));
    assertEquals((short) 0x7c00, HalfFloats.toFloat16(65520f), "past the largest half: infinity");
    assertEquals((short) 0x0001, HalfFloats.toFloat16(0x1p-24f), "smallest subnormal");
    assertEquals((short) 0x0000, HalfFloats.toFloat16(0x1p-25f), "half the smallest subnormal ties to zero (even)");
    assertEquals((short) 0x0002, HalfFloats.toFloat16(3 * 0x1p-25f), "1.5 subnormal steps ties to 2 (even)");
    assertEquals((short) 0x8000, HalfFloats.toFloat16(-0f));
    assertEquals(0x1p-24f, HalfFloats.fromFloat16((short) 1));
    assertEquals(-2f, HalfFloats.fromFloat16((short) 0xc000));
  }

  @Test
  void bfloat16RoundsToNearestEven() {
    assertEquals((short) 0x3f80, HalfFloats.toBFloat16(1 + 0x1p-8f));
    assertEquals((short) 0x3f82, HalfFloats.toBFloat16(1 + 3 * 0x1p-8f));
    assertEquals(3.140625f, HalfFloats.fromBFloat16(HalfFloats.toBFloat16(3.14159f)));
    assertEquals(0x7fc0, HalfFloats.toBFloat16(Float.NaN) & 0xffc0);
  }

  @Test
  void typedFieldsDecodeLikeRawData() {
    TensorProto halves = TensorProto.newBuilder().setDataType(DataType.FLOAT16.number()).addDims(3)
        .addInt32Data(0x3c00).addInt32Data(0xc000).addInt32Data(0x3800).build();
    assertArrayEquals(new float[] {1f, -2f, 0.5f}, new InlineTensor(halves, DataType.FLOAT16).floats());

    TensorProto unsigned = TensorProto.newBuilder().setDataType(DataType.UINT32.number()).addDims(2)
        .addUint64Data(4_000_000_000L).addUint64Data(7).build();
    assertArrayEquals(new long[] {4_000_000_000L, 7}, new InlineTensor(unsigned, DataType.UINT32).longs());

    TensorProto nibbles = TensorProto.newBuilder().setDataType(DataType.INT4.number()).addDims(3)
        .addInt32Data(0x9f & 0xff).addInt32Data(0x07).build();
    assertArrayEquals(new long[] {-1, -7, 7}, new InlineTensor(nibbles, DataType.INT4).longs());

    TensorProto raw = TensorProto.newBuilder().setDataType(DataType.INT8.number()).addDims(2)
        .setRawData(ByteString.copyFrom(new byte[] {-3, 5})).build();
    assertArrayEquals(new float[] {-3, 5}, new InlineTensor(raw, DataType.INT8).floats());
    assertArrayEquals(new int[] {-3, 5}, new InlineTensor(raw, DataType.INT8).ints());

    TensorProto doubles = TensorProto.newBuilder().setDataType(DataType.DOUBLE.number()).addDims(2).addDoubleData(0.1).addDoubleData(-8).build();
    assertArrayEquals(new double[] {0.1, -8}, new InlineTensor(doubles, DataType.DOUBLE).doubles());
  }

  @Test
  void factoriesProduceTheOnnxEncoding() {
    Tensor halves = Tensor.ofFloat16(new long[] {2}, 1f, 65536f);
    assertEquals(4, halves.byteSize());
    assertArrayEquals(new float[] {1f, Float.POSITIVE_INFINITY}, halves.floats());
    assertArrayEquals(new float[] {2.5f}, Tensor.ofBFloat16(new long[] {1}, 2.5f).floats());
    assertArrayEquals(new long[] {5, 6}, Tensor.ofInts(new long[] {2}, 5, 6).longs());
    assertThrows(ArithmeticException.class, () -> Tensor.ofLongs(new long[] {1}, 1L << 40).ints());
    assertThrows(IllegalStateException.class, () -> Tensor.ofFloats(new long[] {1}, 1f).longs());
    assertEquals(2, DataType.INT4.byteSize(3));
    assertEquals(DataType.FLOAT8E4M3FN, DataType.fromNumber(17));
  }
}
