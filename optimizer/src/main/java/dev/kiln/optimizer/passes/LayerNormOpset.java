package dev.kiln.optimizer.passes;

import dev.kiln.graph.Graph;
import dev.kiln.graph.Model;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.OpType;
import java.util.Set;

/**
 * Declares opset 17 for a model that holds a standard-domain LayerNormalization at an older opset (the
 * LayerNorm fusion emits it into opset-14 exports, Optimum's default). LayerNormalization exists in the standard
 * domain from opset 17 only, so a strict checker rejects it earlier; and there is no contrib form to use instead:
 * ONNX Runtime has no com.microsoft LayerNormalization (1.22: "is not a registered function/op") and registers
 * its opset 1–16 kernel under the standard domain, which only ORT accepts.
 *
 * <p>Raising is safe from opset 14 on when the graph has no op whose meaning changed by 17 — of the ops with new
 * versions in 15–17 only RoiAlign's did (16: the default coordinate_transformation_mode); the others only added
 * types, attributes with the old default, or are new. {@link #blocker} is what the fusion checks before it
 * emits LayerNormalization into an older model, so this pass never meets a model it cannot raise.
 */
public final class LayerNormOpset implements GraphPass {
  public static final long LAYER_NORMALIZATION_OPSET = 17;
  private static final long OLDEST_RAISABLE = 14;
  private static final Set<OpType> CHANGED_MEANING_BY_17 = Set.of(Onnx.ROI_ALIGN);

  @Override
  public String name() {
    return "layer-norm-opset";
  }

  @Override
  public int run(Model model) {
    if (model.opsetVersion("") >= LAYER_NORMALIZATION_OPSET || !contains(model.graph(), Set.of(Onnx.LAYER_NORMALIZATION))) {
      return 0;
    }
    if (blocker(model) != null) {
      // Not ours: the fusion never emits into such a model, so the LayerNormalization came with the input.
      return 0;
    }
    model.opsetImports().put("", LAYER_NORMALIZATION_OPSET);
    return 1;
  }

  /** Null when a standard LayerNormalization may go into {@code model} (at 17, or raisable to it); else why not. */
  public static String blocker(Model model) {
    long opset = model.opsetVersion("");
    if (opset >= LAYER_NORMALIZATION_OPSET) {
      return null;
    }
    if (opset < OLDEST_RAISABLE) {
      return "LayerNormalization needs opset 17 and opset " + opset + " cannot be raised to it safely"
          + " (Softmax, Squeeze, Unsqueeze, ReduceSum and others changed meaning at 13 and 14)";
    }
    if (contains(model.graph(), CHANGED_MEANING_BY_17)) {
      return "LayerNormalization needs opset 17 and this opset-" + opset + " model has RoiAlign, whose default changed at 16";
    }
    return null;
  }

  private static boolean contains(Graph graph, Set<OpType> types) {
    for (Node node : graph.nodes()) {
      if (types.contains(node.opType())) {
        return true;
      }
      for (Graph body : node.subgraphs()) {
        if (contains(body, types)) {
          return true;
        }
      }
    }
    return false;
  }
}
