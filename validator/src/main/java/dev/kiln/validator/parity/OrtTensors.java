package dev.kiln.validator.parity;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.TensorInfo;
import dev.kiln.common.HalfFloats;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.IntBuffer;
import java.nio.LongBuffer;

/** ORT output tensors as float arrays, the one form every comparison in Kiln works on. */
public final class OrtTensors {
  private OrtTensors() {}

  /** Every element as float (double, int64, int32 and float16 converted); null for other element types. */
  public static float[] toFloats(OnnxTensor tensor) {
    TensorInfo info = tensor.getInfo();
    int count = Math.toIntExact(info.getNumElements());
    float[] out = new float[count];
    ByteBuffer bytes = tensor.getByteBuffer().order(ByteOrder.nativeOrder());
    switch (info.type) {
      case FLOAT -> bytes.asFloatBuffer().get(out);
      case DOUBLE -> {
        for (int i = 0; i < count; i++) {
          out[i] = (float) bytes.asDoubleBuffer().get(i);
        }
      }
      case INT64 -> {
        LongBuffer longs = bytes.asLongBuffer();
        for (int i = 0; i < count; i++) {
          out[i] = longs.get(i);
        }
      }
      case INT32 -> {
        IntBuffer ints = bytes.asIntBuffer();
        for (int i = 0; i < count; i++) {
          out[i] = ints.get(i);
        }
      }
      case FLOAT16 -> {
        var shorts = bytes.asShortBuffer();
        for (int i = 0; i < count; i++) {
          out[i] = HalfFloats.fromFloat16(shorts.get(i));
        }
      }
      default -> {
        return null;
      }
    }
    return out;
  }
}
