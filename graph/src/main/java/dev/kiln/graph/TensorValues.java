package dev.kiln.graph;

import dev.kiln.common.HalfFloats;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.WritableByteChannel;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/** Decoding raw little-endian tensor bytes into Java arrays, and content digests. */
final class TensorValues {
  private TensorValues() {}

  static float[] floats(DataType type, ByteBuffer raw, int count) {
    ByteBuffer data = raw.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    float[] values = new float[count];
    switch (type) {
      case FLOAT -> data.asFloatBuffer().get(values);
      case FLOAT16 -> {
        for (int i = 0; i < count; i++) {
          values[i] = HalfFloats.fromFloat16(data.getShort(i * 2));
        }
      }
      case BFLOAT16 -> {
        for (int i = 0; i < count; i++) {
          values[i] = HalfFloats.fromBFloat16(data.getShort(i * 2));
        }
      }
      case DOUBLE -> {
        for (int i = 0; i < count; i++) {
          values[i] = (float) data.getDouble(i * 8);
        }
      }
      default -> {
        long[] integers = longs(type, raw, count);
        for (int i = 0; i < count; i++) {
          values[i] = type == DataType.UINT64 && integers[i] < 0 ? unsignedToFloat(integers[i]) : integers[i];
        }
      }
    }
    return values;
  }

  static double[] doubles(DataType type, ByteBuffer raw, int count) {
    if (type == DataType.DOUBLE) {
      double[] values = new double[count];
      raw.duplicate().order(ByteOrder.LITTLE_ENDIAN).asDoubleBuffer().get(values);
      return values;
    }
    float[] values = floats(type, raw, count);
    double[] wide = new double[count];
    for (int i = 0; i < count; i++) {
      wide[i] = values[i];
    }
    return wide;
  }

  private static float unsignedToFloat(long value) {
    return (float) ((value >>> 1) * 2.0 + (value & 1));
  }

  static long[] longs(DataType type, ByteBuffer raw, int count) {
    ByteBuffer data = raw.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    long[] values = new long[count];
    switch (type) {
      case INT64, UINT64 -> data.asLongBuffer().get(values);
      case INT32 -> {
        for (int i = 0; i < count; i++) {
          values[i] = data.getInt(i * 4);
        }
      }
      case UINT32 -> {
        for (int i = 0; i < count; i++) {
          values[i] = data.getInt(i * 4) & 0xffffffffL;
        }
      }
      case INT16 -> {
        for (int i = 0; i < count; i++) {
          values[i] = data.getShort(i * 2);
        }
      }
      case UINT16 -> {
        for (int i = 0; i < count; i++) {
          values[i] = data.getShort(i * 2) & 0xffff;
        }
      }
      case INT8 -> {
        for (int i = 0; i < count; i++) {
          values[i] = data.get(i);
        }
      }
      case UINT8, BOOL -> {
        for (int i = 0; i < count; i++) {
          values[i] = data.get(i) & 0xff;
        }
      }
      case UINT4, INT4 -> {
        for (int i = 0; i < count; i++) {
          int packed = data.get(i / 2) & 0xff;
          int nibble = (i % 2 == 0) ? packed & 0xf : packed >>> 4;
          values[i] = type == DataType.INT4 && nibble >= 8 ? nibble - 16 : nibble;
        }
      }
      default -> throw new IllegalStateException("tensor of " + type + " has no integer values");
    }
    return values;
  }

  static boolean sameBytes(Tensor a, Tensor b) {
    if (a.byteSize() <= ExternalTensor.MAX_MAP_BYTES && b.byteSize() <= ExternalTensor.MAX_MAP_BYTES) {
      return a.bytes().equals(b.bytes());
    }
    return digest(a).equals(digest(b));
  }

  /** SHA-256 of the raw encoding, streamed so it works for tensors of any size. */
  static String digest(Tensor tensor) {
    MessageDigest sha;
    try {
      sha = MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
    if (tensor.dataType() == DataType.STRING) {
      for (var string : tensor.strings()) {
        sha.update(Long.toString(string.size()).getBytes(java.nio.charset.StandardCharsets.US_ASCII));
        sha.update((byte) ':');
        sha.update(string.asReadOnlyByteBuffer());
      }
    } else {
      WritableByteChannel sink =
          new WritableByteChannel() {
            @Override
            public int write(ByteBuffer source) {
              int length = source.remaining();
              sha.update(source);
              return length;
            }

            @Override
            public boolean isOpen() {
              return true;
            }

            @Override
            public void close() {}
          };
      try {
        tensor.writeTo(sink);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
    return HexFormat.of().formatHex(sha.digest());
  }
}
