package dev.kiln.optimizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.graph.Model;
import dev.kiln.graph.ModelReader;
import dev.kiln.graph.ModelWriter;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import dev.kiln.optimizer.passes.ConstantFolding;
import dev.kiln.optimizer.specialize.StaticShapes;
import dev.kiln.testdata.Fixtures;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * --static on every fixture component, bound to its first stored input set: no Shape node survives, every input and
 * output is static, and ORT gives the dynamic model's outputs at that shape (max relative error ≤ 1e-5).
 */
class StaticShapesFixtureTest {
  @TempDir Path folder;

  @Test
  void everyFixtureSpecializesWithoutShapeNodesAndKeepsParity() {
    Map<String, String> counts = new TreeMap<>();
    for (String name : Fixtures.componentNames()) {
      Path original = Fixtures.component(name, Fixtures.manifest().component(name).opsets().get(0));
      Model model = ModelReader.read(original);
      Map<String, Long> dims = storedDims(original, model);
      int before = model.graph().totalNodeCount();
      StaticShapes.apply(model, dims, ConstantFolding.DEFAULT_LIMIT_BYTES, name);
      counts.put(name, before + " -> " + model.graph().totalNodeCount());
      long shapeNodes = model.graph().nodes().stream().filter(node -> node.is(Onnx.SHAPE)).count();
      assertEquals(0, shapeNodes, name + ": Shape nodes survive --static " + dims);
      for (Value value : model.graph().outputs()) {
        assertTrue(value.shape() != null && value.shape().isFullyKnown(), name + ": output " + value + " is " + value.shape());
      }
      Path rewritten = folder.resolve(name + ".onnx");
      ModelWriter.write(model, rewritten);
      var inputs = FixtureModels.storedInputs(original, 0);
      double error = OrtParity.maxRelativeError(OrtParity.run(original, inputs), OrtParity.run(rewritten, inputs));
      assertTrue(error <= 1e-5, name + ": static vs dynamic max relative error " + error);
    }
    System.out.println("--static node counts: " + counts);
    assertEquals(new TreeMap<>(Map.ofEntries(Map.entry("clip_text", "529 -> 204"), Map.entry("sd2_clip_text", "541 -> 216"),
        Map.entry("sd2_unet", "5064 -> 1935"), Map.entry("sd2_unet_sdpa", "2160 -> 1143"),
        Map.entry("sdxl_clip_text_2", "542 -> 217"), Map.entry("sdxl_unet", "7134 -> 2491"),
        Map.entry("sdxl_unet_sdpa", "2998 -> 1527"), Map.entry("unet", "4976 -> 1847"), Map.entry("unet_sdpa", "2146 -> 1129"),
        Map.entry("vae_decoder", "607 -> 417"), Map.entry("vae_decoder_overflow", "607 -> 417"),
        Map.entry("vae_decoder_sdpa", "402 -> 309"), Map.entry("vae_encoder", "544 -> 317"),
        Map.entry("controlnet", "2172 -> 742"), Map.entry("unet_controlnet", "4656 -> 1527"))), counts);
  }

  /** Each symbolic dim of the inputs named with the size test_data_set_0 feeds it. */
  private static Map<String, Long> storedDims(Path modelPath, Model model) {
    Map<String, Long> dims = new TreeMap<>();
    List<Value> inputs = model.graph().inputs().stream().filter(value -> !value.isInitializer()).toList();
    for (int i = 0; i < inputs.size(); i++) {
      Tensor stored = ModelReader.readTensor(modelPath.getParent().resolve("test_data_set_0").resolve("input_" + i + ".pb"));
      List<Shape.Dim> declared = inputs.get(i).shape().dims();
      for (int axis = 0; axis < declared.size(); axis++) {
        if (declared.get(axis) instanceof Shape.Symbolic symbolic) {
          dims.put(symbolic.name(), stored.dims()[axis]);
        }
      }
    }
    return dims;
  }
}
