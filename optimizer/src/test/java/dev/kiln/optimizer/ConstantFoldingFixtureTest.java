package dev.kiln.optimizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.graph.Model;
import dev.kiln.graph.ModelReader;
import dev.kiln.graph.ModelWriter;
import dev.kiln.graph.Value;
import dev.kiln.optimizer.passes.ConstantFolding;
import dev.kiln.optimizer.profiles.Target;
import dev.kiln.testdata.Fixtures;
import dev.kiln.testdata.Opset;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * General constant folding on every fixture: alone it keeps every dynamic axis and ORT parity (≤ 1e-5) with the
 * node counts pinned; inside the profiles it leaves no more nodes than the special-cased shape and scalar folding
 * it replaced did (their counts, measured before the switch, pinned below).
 */
class ConstantFoldingFixtureTest {
  @TempDir Path folder;

  @Test
  void foldingAloneKeepsDynamicAxesAndParity() {
    Map<String, String> counts = new TreeMap<>();
    for (String name : Fixtures.componentNames()) {
      Path original = Fixtures.component(name, Fixtures.manifest().component(name).opsets().get(0));
      Model model = ModelReader.read(original);
      int before = model.graph().totalNodeCount();
      List<String> interfaceBefore = signature(model);
      int folded = new ConstantFolding().run(model);
      counts.put(name, before + " -> " + model.graph().totalNodeCount() + " (" + folded + " folded)");
      assertEquals(interfaceBefore, signature(model), name + ": folding changed the model's interface");
      Path rewritten = folder.resolve(name + ".onnx");
      ModelWriter.write(model, rewritten);
      var inputs = FixtureModels.storedInputs(original, 0);
      double error = OrtParity.maxRelativeError(OrtParity.run(original, inputs), OrtParity.run(rewritten, inputs));
      assertTrue(error <= 1e-5, name + ": max relative error " + error + " after folding");
    }
    System.out.println("constant folding alone: " + counts);
    // Pinned: what folds without --static is what does not depend on a symbolic size (masks, scales, fixed sizes).
    assertEquals(new TreeMap<>(Map.ofEntries(Map.entry("clip_text", "529 -> 506 (23 folded)"),
        Map.entry("sd2_clip_text", "541 -> 518 (23 folded)"), Map.entry("sd2_unet", "5064 -> 3949 (1115 folded)"),
        Map.entry("sd2_unet_sdpa", "2160 -> 1645 (515 folded)"), Map.entry("sdxl_clip_text_2", "542 -> 519 (23 folded)"),
        Map.entry("sdxl_unet", "7134 -> 5448 (1686 folded)"), Map.entry("sdxl_unet_sdpa", "2998 -> 2212 (786 folded)"),
        Map.entry("unet", "4976 -> 3861 (1115 folded)"), Map.entry("unet_sdpa", "2146 -> 1631 (515 folded)"),
        Map.entry("controlnet", "2172 -> 1663 (509 folded)"), Map.entry("unet_controlnet", "4656 -> 3541 (1115 folded)"),
        Map.entry("vae_decoder", "607 -> 560 (47 folded)"), Map.entry("vae_decoder_overflow", "607 -> 560 (47 folded)"),
        Map.entry("vae_decoder_sdpa", "402 -> 372 (30 folded)"), Map.entry("vae_encoder", "544 -> 452 (92 folded)"))), counts);
  }

  /**
   * Nodes after the cpu and tensorrt profiles at each fixture's first opset, as the special-cased shape and scalar
   * folding left them (measured on every fixture, opset and target before the switch: all 66 equal after it).
   */
  private static final Map<String, Integer> NODES_BEFORE_THE_SWITCH = Map.ofEntries(
      Map.entry("clip_text/cpu", 44), Map.entry("clip_text/tensorrt", 247),
      Map.entry("sd2_clip_text/cpu", 41), Map.entry("sd2_clip_text/tensorrt", 259),
      Map.entry("sd2_unet/cpu", 999), Map.entry("sd2_unet/tensorrt", 1866),
      Map.entry("sd2_unet_sdpa/cpu", 675), Map.entry("sd2_unet_sdpa/tensorrt", 1134),
      Map.entry("sdxl_clip_text_2/cpu", 42), Map.entry("sdxl_clip_text_2/tensorrt", 260),
      Map.entry("sdxl_unet/cpu", 1122), Map.entry("sdxl_unet/tensorrt", 2433),
      Map.entry("sdxl_unet_sdpa/cpu", 757), Map.entry("sdxl_unet_sdpa/tensorrt", 1482),
      Map.entry("unet/cpu", 977), Map.entry("unet/tensorrt", 1838),
      Map.entry("unet_sdpa/cpu", 661), Map.entry("unet_sdpa/tensorrt", 1120),
      Map.entry("controlnet/cpu", 504), Map.entry("controlnet/tensorrt", 753),
      Map.entry("unet_controlnet/cpu", 987), Map.entry("unet_controlnet/tensorrt", 1518),
      Map.entry("vae_decoder/cpu", 374), Map.entry("vae_decoder/tensorrt", 406),
      Map.entry("vae_decoder_overflow/cpu", 374), Map.entry("vae_decoder_overflow/tensorrt", 406),
      Map.entry("vae_decoder_sdpa/cpu", 282), Map.entry("vae_decoder_sdpa/tensorrt", 304),
      Map.entry("vae_encoder/cpu", 282), Map.entry("vae_encoder/tensorrt", 314));

  @Test
  void profilesLeaveNoMoreNodesThanTheSpecialCasedFolding() {
    Map<String, Integer> after = new TreeMap<>();
    for (String name : Fixtures.componentNames()) {
      Opset opset = Fixtures.manifest().component(name).opsets().get(0);
      for (Target target : List.of(Target.CPU, Target.TENSORRT)) {
        Model model = ModelReader.read(Fixtures.component(name, opset));
        var report = Optimizer.optimize(model, name, Optimizer.Options.of(target).withoutCudaKernelLimits());
        after.put(name + "/" + target.id(), report.nodesAfter());
      }
    }
    assertEquals(new TreeMap<>(NODES_BEFORE_THE_SWITCH), after);
  }

  private static List<String> signature(Model model) {
    return java.util.stream.Stream.concat(model.graph().inputs().stream().filter(value -> !value.isInitializer()),
        model.graph().outputs().stream()).map(value -> value.name() + ":" + value.dataType() + value.shape()).toList();
  }
}
