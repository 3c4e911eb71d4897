package dev.kiln.optimizer.fusions;

import dev.kiln.graph.Shape;
import dev.kiln.graph.infer.DimArithmetic;

/**
 * When the skip of a fused residual op has "the input's shape".
 *
 * <p>Every axis but the batch must be provably equal. The batch axis may also be one that inference cannot
 * name: in SD graphs the time embedding goes through {@code Expand(timestep, batch)}, whose size is the batch
 * unless the caller passes more timesteps than samples, and from there the unknown batch spreads into every
 * residual sum. The fused kernels (SkipGroupNorm, BiasAdd) check the skip's shape against the input's at run
 * time and return INVALID_ARGUMENT on a mismatch, so this assumption can make a malformed call fail loudly; it
 * can never make a call compute a different number. Two different known batch sizes are refused.
 */
final class ResidualShapes {
  private ResidualShapes() {}

  /** {@code skip} has {@code input}'s shape, up to an unknown batch axis. */
  static boolean sameShape(Shape input, Shape skip) {
    if (input == null || skip == null || input.rank() != skip.rank() || input.rank() == 0) {
      return false;
    }
    if (!sameBatch(input.dim(0), skip.dim(0))) {
      return false;
    }
    for (int axis = 1; axis < input.rank(); axis++) {
      if (!DimArithmetic.certainlyEqual(input.dim(axis), skip.dim(axis))) {
        return false;
      }
    }
    return true;
  }

  static boolean sameBatch(Shape.Dim input, Shape.Dim skip) {
    return DimArithmetic.certainlyEqual(input, skip) || input instanceof Shape.Unknown || skip instanceof Shape.Unknown;
  }
}
