package dev.kiln.optimizer.precision;

import dev.kiln.graph.Microsoft;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.OpType;
import java.util.Map;
import java.util.Set;

/**
 * Inputs that stay float32 in a float16 node, because ONNX Runtime's kernels declare them so.
 *
 * <p>Derived from ONNX Runtime's kernel tables (docs/OperatorKernels.md, section "Operators implemented by
 * CUDAExecutionProvider", and docs/ContribOperators.md): an input is listed when its type in the kernel
 * signature is the literal {@code tensor(float)} (Resize and Upsample {@code scales}), or when its type variable is
 * left out of the CUDA kernel's registered constraints, so the kernel binds it to float (Resize {@code roi}:
 * {@code T2}; GroupNorm and SkipGroupNorm {@code gamma}/{@code beta}: {@code M}). Integer-typed inputs (masks,
 * sizes) are not float at all and need no entry. The CPU provider's table constrains the same inputs the same way.
 */
final class AlwaysFloatInputs {
  private AlwaysFloatInputs() {}

  private static final OpType UPSAMPLE = OpType.onnx("Upsample");

  /** Per op, the input positions; Resize's depend on its form (opset 10: X, scales; 11+: X, roi, scales, sizes). */
  private static final Map<OpType, Set<Integer>> POSITIONS = Map.of(
      UPSAMPLE, Set.of(1),
      Microsoft.GROUP_NORM, Set.of(1, 2),
      Microsoft.SKIP_GROUP_NORM, Set.of(1, 2));

  /** Whether input {@code index} of {@code node} must be float32 even when the node computes in float16. */
  static boolean required(Node node, int index, long opset) {
    if (node.is(Onnx.RESIZE)) {
      return opset < 11 ? index == 1 : index == 1 || index == 2;
    }
    Set<Integer> positions = POSITIONS.get(node.opType());
    return positions != null && positions.contains(index);
  }
}
