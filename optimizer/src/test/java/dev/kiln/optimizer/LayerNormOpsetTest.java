package dev.kiln.optimizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.graph.Model;
import dev.kiln.graph.ModelReader;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.optimizer.profiles.Target;
import dev.kiln.testdata.Fixtures;
import dev.kiln.testdata.Opset;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * LayerNormalization exists in the standard domain from opset 17 only. A fused opset-14 model (what Optimum exports
 * by default) must not hold one at opset 14: a strict checker rejects the graph ("No Op registered for
 * LayerNormalization with domain_version of 14"). There is no com.microsoft LayerNormalization to fall back to
 * (ONNX Runtime 1.22: "com.microsoft:LayerNormalization(-1) is not a registered function/op"; its opset 1–16
 * kernel is registered under the standard domain, which only ORT itself accepts), so the model's opset is raised
 * to 17 when nothing in it changed meaning since its own opset.
 */
class LayerNormOpsetTest {
  @Test
  void anOpset14ModelWithFusedLayerNormsDeclaresOpset17() {
    for (Target target : new Target[] {Target.CPU, Target.CUDA}) {
      Model model = ModelReader.read(Fixtures.component("clip_text", Opset.V14));
      Map<String, Integer> ops = Optimizer.optimize(model, "clip_text", Optimizer.Options.of(target)).opsAfter();
      assertEquals(1, ops.getOrDefault("LayerNormalization", 0), target.id() + " " + ops);
      assertEquals(17, model.opsetVersion(""), target.id() + ": LayerNormalization in a model that declares opset "
          + model.opsetVersion(""));
    }
  }

  @Test
  void everyStandardLayerNormalizationSitsInAnOpset17Model() {
    Model model = ModelReader.read(Fixtures.component("unet_sdpa", Opset.V14));
    Optimizer.optimize(model, "unet_sdpa", Optimizer.Options.of(Target.CPU));
    long layerNorms = model.graph().nodes().stream().filter(node -> node.is(Onnx.LAYER_NORMALIZATION)).count();
    assertTrue(layerNorms > 0);
    assertEquals(17, model.opsetVersion(""));
    for (Node node : model.graph().nodes()) {
      assertTrue(node.opType().domain().isEmpty() || node.opType().domain().equals("com.microsoft"), node.toString());
    }
  }
}
