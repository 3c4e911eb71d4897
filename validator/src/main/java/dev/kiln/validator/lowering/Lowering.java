package dev.kiln.validator.lowering;

import dev.kiln.graph.Graph;
import dev.kiln.graph.Model;
import dev.kiln.graph.Node;
import dev.kiln.graph.OpType;
import dev.kiln.graph.Value;
import dev.kiln.graph.infer.ShapeInference;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Rewrites the contrib operators that only have CUDA kernels into standard ONNX, so that a cuda-profile graph
 * runs in ONNX Runtime on CPU and can be compared number for number with the graph it was fused from.
 *
 * <p>The pass mutates the model it is given: lower a copy (read the file again), never the graph being
 * shipped. Every decomposition is written from the operator's specification; see each {@link OpLowering}.
 */
public final class Lowering {
  private final List<OpLowering> lowerings;

  private Lowering(List<OpLowering> lowerings) {
    this.lowerings = List.copyOf(lowerings);
  }

  /**
   * GroupNorm, SkipGroupNorm, BiasSplitGelu, BiasAdd, NhwcConv, and the packed forms of MultiHeadAttention: what
   * ORT's CPU execution provider lacks. Unpacked MultiHeadAttention stays, since the CPU EP implements it.
   */
  public static Lowering forOrtCpu() {
    return new Lowering(List.of(new GroupNormLowering(), new SkipGroupNormLowering(), new BiasSplitGeluLowering(),
        new BiasAddLowering(), new NhwcConvLowering(), new PackedAttentionLowering()));
  }

  /**
   * As {@link #forOrtCpu()}, and every MultiHeadAttention (packed or not) decomposed into MatMul/Softmax as well:
   * a cross-check of ORT's attention kernel, and the form for targets without the contrib op.
   */
  public static Lowering decomposingAttention() {
    return new Lowering(List.of(new GroupNormLowering(), new SkipGroupNormLowering(), new BiasSplitGeluLowering(),
        new BiasAddLowering(), new NhwcConvLowering(), new AttentionDecomposition()));
  }

  /**
   * Lowers every node it covers, in place, and returns how many nodes of each operator it replaced (in the order
   * of first occurrence). Throws {@link dev.kiln.common.KilnException.Unsupported} naming the node when a
   * node's inputs or attributes fall outside what its specification allows.
   */
  public Map<OpType, Integer> lower(Model model) {
    Graph graph = model.graph();
    ShapeInference shapes = ShapeInference.of(model);
    Emitter emitter = new Emitter(model, shapes);
    Map<OpType, Integer> counts = new LinkedHashMap<>();
    for (Node node : new ArrayList<>(graph.nodes())) {
      OpLowering lowering = find(node, emitter);
      if (lowering == null) {
        continue;
      }
      emitter.startAt(node);
      List<Value> replacements = lowering.lower(node, emitter);
      for (int index = 0; index < node.outputCount(); index++) {
        Value original = node.output(index);
        Value replacement = index < replacements.size() ? replacements.get(index) : null;
        if (original == null || original.consumerCount() == 0) {
          continue;
        }
        if (replacement == null) {
          throw emitter.failure("output " + index + " is used but has no lowered counterpart");
        }
        emitter.editor().replaceKeepingInterface(original, replacement);
      }
      graph.remove(node);
      counts.merge(node.opType(), 1, Integer::sum);
    }
    return counts;
  }

  private OpLowering find(Node node, Emitter emitter) {
    for (OpLowering lowering : lowerings) {
      if (node.is(lowering.op()) && lowering.applies(node, emitter)) {
        return lowering;
      }
    }
    return null;
  }
}
