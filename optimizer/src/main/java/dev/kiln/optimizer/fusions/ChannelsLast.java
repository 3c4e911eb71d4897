package dev.kiln.optimizer.fusions;

import dev.kiln.graph.Attribute;
import dev.kiln.graph.DataType;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import dev.kiln.optimizer.engine.Builder;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.List;

/**
 * What the CUDA-only rules share: moving 4-D activations between NCHW and NHWC with Transpose nodes (which
 * {@link TransposeCancellation} later removes in pairs), reading per-channel constants, and the OHWI weight.
 */
final class ChannelsLast {
  private ChannelsLast() {}

  /** NCHW → NHWC. */
  static final long[] TO_NHWC = {0, 2, 3, 1};
  /** NHWC → NCHW. */
  static final long[] TO_NCHW = {0, 3, 1, 2};

  static Value toNhwc(Builder builder, Value nchw) {
    return builder.op(Onnx.TRANSPOSE, List.of(nchw), Attribute.ofInts("perm", TO_NHWC));
  }

  static Value toNchw(Builder builder, Value nhwc) {
    return builder.op(Onnx.TRANSPOSE, List.of(nhwc), Attribute.ofInts("perm", TO_NCHW));
  }

  /** Whether {@code node} is a Transpose with exactly this permutation. */
  static boolean isTranspose(Node node, long[] permutation) {
    Attribute perm = node.attribute("perm");
    return node.is(Onnx.TRANSPOSE) && perm != null && Arrays.equals(perm.asLongs(), permutation);
  }

  /** Float element types the CUDA kernels are registered for. */
  static boolean hasCudaKernelType(DataType type) {
    return type == DataType.FLOAT || type == DataType.FLOAT16;
  }

  /**
   * The C values of a constant that multiplies or adds per channel on an NCHW tensor: shape [C, 1, 1] or
   * [1, C, 1, 1], or a single value (the same for every channel). Null for anything else, e.g. [C], which
   * would broadcast along W.
   */
  static float[] perChannel(Tensor constant, long channels) {
    if (constant == null || !constant.dataType().isFloatingPoint()) {
      return null;
    }
    long[] dims = constant.dims();
    if (constant.elementCount() == 1) {
      float[] values = new float[Math.toIntExact(channels)];
      Arrays.fill(values, constant.floats()[0]);
      return values;
    }
    boolean chw = dims.length == 3 && dims[0] == channels && dims[1] == 1 && dims[2] == 1;
    boolean nchw = dims.length == 4 && dims[0] == 1 && dims[1] == channels && dims[2] == 1 && dims[3] == 1;
    return chw || nchw ? constant.floats() : null;
  }

  /** A lazily transposed copy of an OIHW filter in OHWI order, computed while the writer streams it. */
  static Tensor ohwi(Tensor oihw) {
    long[] dims = oihw.dims();
    int out = Math.toIntExact(dims[0]);
    int in = Math.toIntExact(dims[1]);
    int height = Math.toIntExact(dims[2]);
    int width = Math.toIntExact(dims[3]);
    int elementSize = oihw.dataType().elementSize();
    long[] transposed = {dims[0], dims[2], dims[3], dims[1]};
    return Tensor.computed(oihw.dataType(), transposed, () -> {
      ByteBuffer source = oihw.readBytes().order(ByteOrder.LITTLE_ENDIAN);
      ByteBuffer target = ByteBuffer.allocate(Math.toIntExact(oihw.byteSize())).order(ByteOrder.LITTLE_ENDIAN);
      int base = source.position();
      int plane = height * width;
      // Whole elements move with one typed access each (a byte at a time made this transpose the slowest step of a
      // full-size UNet's fp16 conversion for CUDA: 9 s of 31).
      int to = 0;
      for (int o = 0; o < out; o++) {
        for (int pixel = 0; pixel < plane; pixel++) {
          int from = base + (o * in * plane + pixel) * elementSize;
          int stride = plane * elementSize;
          switch (elementSize) {
            case 4 -> {
              for (int i = 0; i < in; i++, from += stride, to += 4) {
                target.putInt(to, source.getInt(from));
              }
            }
            case 2 -> {
              for (int i = 0; i < in; i++, from += stride, to += 2) {
                target.putShort(to, source.getShort(from));
              }
            }
            default -> {
              for (int i = 0; i < in; i++, from += stride) {
                for (int b = 0; b < elementSize; b++) {
                  target.put(to++, source.get(from + b));
                }
              }
            }
          }
        }
      }
      return target;
    });
  }

  /** Rank and dims of an inferred shape, or null when the rank is not {@code rank}. */
  static Shape ofRank(Shape shape, int rank) {
    return shape != null && shape.rank() == rank ? shape : null;
  }
}
