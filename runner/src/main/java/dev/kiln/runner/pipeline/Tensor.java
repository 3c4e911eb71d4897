package dev.kiln.runner.pipeline;

import java.util.Arrays;

/** A float32 array with its shape: what the pipeline passes between stages. */
public record Tensor(float[] data, long[] shape) {
  public Tensor {
    long count = 1;
    for (long dimension : shape) {
      count *= dimension;
    }
    if (count != data.length) {
      throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " needs " + count + " values, got " + data.length);
    }
  }

  public int rank() {
    return shape.length;
  }

  public long dimension(int axis) {
    return shape[axis < 0 ? shape.length + axis : axis];
  }

  /** Rows {@code from} (inclusive) to {@code to} (exclusive) of the first axis. */
  public Tensor rows(int from, int to) {
    int rowSize = data.length / (int) shape[0];
    long[] newShape = shape.clone();
    newShape[0] = to - from;
    return new Tensor(Arrays.copyOfRange(data, from * rowSize, to * rowSize), newShape);
  }

  /** Concatenation along the first axis. */
  public static Tensor concatenate(java.util.List<Tensor> parts) {
    long rows = 0;
    int total = 0;
    for (Tensor part : parts) {
      rows += part.shape[0];
      total += part.data.length;
    }
    float[] data = new float[total];
    int offset = 0;
    for (Tensor part : parts) {
      System.arraycopy(part.data, 0, data, offset, part.data.length);
      offset += part.data.length;
    }
    long[] shape = parts.get(0).shape.clone();
    shape[0] = rows;
    return new Tensor(data, shape);
  }

  /** The same row repeated {@code count} times along the first axis (which must be 1). */
  public Tensor repeat(int count) {
    return concatenate(java.util.Collections.nCopies(count, this));
  }
}
