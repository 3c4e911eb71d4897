package dev.kiln.runner.pipeline;

import java.util.ArrayList;
import java.util.List;

/**
 * What a ControlNet adds to its UNet: one tensor per down-block skip connection ({@code down}, in the UNet's
 * order) and one for the mid block, each [rows, channels, height, width]. The UNet takes them as
 * {@code down_block_additional_residuals_K} and {@code mid_block_additional_residual}; zeros are no control.
 */
record Residuals(List<Tensor> down, Tensor mid) {
  /** The tensors in the UNet's order: down_0 .. down_{N-1}, then mid. */
  List<Tensor> all() {
    List<Tensor> all = new ArrayList<>(down);
    all.add(mid);
    return all;
  }

  /** Zeros of the given per-row shapes ([channels, height, width] each, mid last) for {@code rows} rows. */
  static Residuals zeros(List<long[]> rowShapes, int rows) {
    List<Tensor> tensors = new ArrayList<>();
    for (long[] rowShape : rowShapes) {
      long[] shape = new long[rowShape.length + 1];
      shape[0] = rows;
      System.arraycopy(rowShape, 0, shape, 1, rowShape.length);
      long count = 1;
      for (long dimension : shape) {
        count *= dimension;
      }
      tensors.add(new Tensor(new float[Math.toIntExact(count)], shape));
    }
    return of(tensors);
  }

  private static Residuals of(List<Tensor> all) {
    return new Residuals(List.copyOf(all.subList(0, all.size() - 1)), all.get(all.size() - 1));
  }

  /** Rows {@code from} (inclusive) to {@code to} (exclusive) of every tensor. */
  Residuals rows(int from, int to) {
    return of(all().stream().map(tensor -> tensor.rows(from, to)).toList());
  }

  /** Element-wise sum (several ControlNets: diffusers' MultiControlNetModel adds their residuals). */
  Residuals plus(Residuals other) {
    List<Tensor> mine = all();
    List<Tensor> theirs = other.all();
    List<Tensor> sums = new ArrayList<>();
    for (int index = 0; index < mine.size(); index++) {
      float[] left = mine.get(index).data();
      float[] right = theirs.get(index).data();
      float[] sum = new float[left.length];
      for (int element = 0; element < sum.length; element++) {
        sum[element] = left[element] + right[element];
      }
      sums.add(new Tensor(sum, mine.get(index).shape()));
    }
    return of(sums);
  }

  /** Each tensor times its own factor (guess mode's per-depth scales), in float32 as torch multiplies. */
  Residuals scaled(float[] factors) {
    List<Tensor> mine = all();
    List<Tensor> scaled = new ArrayList<>();
    for (int index = 0; index < mine.size(); index++) {
      float[] values = mine.get(index).data();
      float[] result = new float[values.length];
      for (int element = 0; element < values.length; element++) {
        result[element] = values[element] * factors[index];
      }
      scaled.add(new Tensor(result, mine.get(index).shape()));
    }
    return of(scaled);
  }

  /** Zero rows first, then these (guess mode: the unconditional half of the guidance batch gets no control). */
  Residuals afterZeroRows() {
    return of(all().stream().map(tensor -> Tensor.concatenate(List.of(new Tensor(new float[tensor.data().length], tensor.shape()), tensor))).toList());
  }
}
