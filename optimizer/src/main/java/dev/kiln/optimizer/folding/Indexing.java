package dev.kiln.optimizer.folding;

import java.util.Arrays;

/** Row-major index arithmetic shared by the evaluators: strides, numpy broadcasting, axis normalization. */
final class Indexing {
  private Indexing() {}

  static long[] strides(long[] dims) {
    long[] strides = new long[dims.length];
    long stride = 1;
    for (int axis = dims.length - 1; axis >= 0; axis--) {
      strides[axis] = stride;
      stride *= dims[axis];
    }
    return strides;
  }

  /** The numpy broadcast of the shapes, or an exception naming both when a pair of sizes conflicts. */
  static long[] broadcast(long[]... shapes) {
    int rank = 0;
    for (long[] shape : shapes) {
      rank = Math.max(rank, shape.length);
    }
    long[] out = new long[rank];
    Arrays.fill(out, 1);
    for (long[] shape : shapes) {
      for (int i = 0; i < shape.length; i++) {
        int axis = rank - shape.length + i;
        long size = shape[i];
        if (size == out[axis] || size == 1) {
          continue;
        }
        if (out[axis] != 1) {
          throw new EvaluationException("shapes do not broadcast: " + describe(shapes));
        }
        out[axis] = size;
      }
    }
    return out;
  }

  private static String describe(long[][] shapes) {
    StringBuilder text = new StringBuilder();
    for (long[] shape : shapes) {
      text.append(text.length() == 0 ? "" : " and ").append(Arrays.toString(shape));
    }
    return text.toString();
  }

  /** For each element of {@code out}, the flat index of the element of {@code in} broadcast to it. */
  static int[] broadcastIndex(long[] in, long[] out, int count) {
    int rank = out.length;
    long[] inStrides = new long[rank];
    long[] strides = strides(in);
    for (int i = 0; i < in.length; i++) {
      int axis = rank - in.length + i;
      inStrides[axis] = in[i] == 1 ? 0 : strides[i];
    }
    int[] index = new int[count];
    long[] position = new long[rank];
    for (int flat = 0; flat < count; flat++) {
      long source = 0;
      for (int axis = 0; axis < rank; axis++) {
        source += position[axis] * inStrides[axis];
      }
      index[flat] = (int) source;
      for (int axis = rank - 1; axis >= 0; axis--) {
        if (++position[axis] < out[axis]) {
          break;
        }
        position[axis] = 0;
      }
    }
    return index;
  }

  /** {@code axis} in [-rank, rank) made non-negative. */
  static int axis(long axis, int rank) {
    if (axis < -rank || axis >= rank) {
      throw new EvaluationException("axis " + axis + " is out of range for rank " + rank);
    }
    return (int) (axis < 0 ? axis + rank : axis);
  }
}
