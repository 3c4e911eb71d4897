package dev.kiln.optimizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.graph.Model;
import dev.kiln.graph.ModelReader;
import dev.kiln.graph.Value;
import dev.kiln.optimizer.OptimizationReport.ComponentReport;
import dev.kiln.optimizer.profiles.Component;
import dev.kiln.optimizer.profiles.Target;
import dev.kiln.testdata.Fixtures;
import dev.kiln.testdata.Opset;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The ControlNet pair in the optimizer: the ControlNet is recognised (from its control-image input, or its pipeline
 * folder) and fused as the UNet's encoder; the UNet with residual inputs fuses exactly as the plain UNet (same
 * fused-op counts: the residual Adds sit between the skip samples and the up blocks' Concats, outside every
 * pattern), and zero residuals give the plain UNet's output. FixtureFusionTest proves both fixtures' parity and
 * fused counts from the module inventory; the node counts here are pinned.
 */
class ControlNetFusionTest {
  /** nodes before -> after, per target: unet, unet_controlnet, controlnet (opset 17 fixtures). */
  private static final Map<Target, List<String>> NODE_COUNTS = Map.of(
      Target.CPU, List.of("4646 -> 977", "4656 -> 987", "2172 -> 504"),
      Target.CUDA, List.of("4646 -> 482", "4656 -> 492", "2172 -> 285"),
      Target.TENSORRT, List.of("4646 -> 1508", "4656 -> 1518", "2172 -> 753"));

  @TempDir Path folder;

  private static ComponentReport optimize(String name, Target target) {
    Model model = ModelReader.read(Fixtures.component(name, Opset.V17));
    ComponentReport report = Optimizer.optimize(model, name, Optimizer.Options.of(target).verifying().withoutCudaKernelLimits());
    // The residual inputs keep their own declared dims, and no size in the graph is read off them (they equal the
    // skip samples only by the ControlNet contract): the validator binds them from the skip samples.
    for (Value input : model.graph().inputs()) {
      if (input.name().contains("additional_residual")) {
        assertEquals(input.name() + "_height", ((dev.kiln.graph.Shape.Symbolic) input.shape().dim(2)).name());
        assertTrue(input.uses().stream().noneMatch(use -> use.node().is(dev.kiln.graph.Onnx.SHAPE)), input.name());
      }
    }
    return report;
  }

  private static Map<String, Integer> fused(Map<String, Integer> ops) {
    Map<String, Integer> fused = new TreeMap<>();
    ops.forEach((op, count) -> {
      if (op.startsWith("com.microsoft:") || op.equals("LayerNormalization")) {
        fused.put(op, count);
      }
    });
    return fused;
  }

  @Test
  void theControlNetIsRecognisedByItsControlImageAndTheResidualUnetAsAUnet() {
    assertEquals(Component.CONTROLNET, Component.detect(ModelReader.read(Fixtures.component("controlnet", Opset.V17)).graph(), "c"));
    assertEquals(Component.UNET, Component.detect(ModelReader.read(Fixtures.component("unet_controlnet", Opset.V17)).graph(), "u"));
    assertEquals(Component.CONTROLNET, Component.parse("controlnet"));
  }

  @ParameterizedTest
  @EnumSource(Target.class)
  void residualInputsLeaveEveryUnetFusionInPlace(Target target) {
    ComponentReport plain = optimize("unet", target);
    ComponentReport residual = optimize("unet_controlnet", target);
    ComponentReport controlnet = optimize("controlnet", target);
    List<String> counts = List.of(plain.nodesBefore() + " -> " + plain.nodesAfter(),
        residual.nodesBefore() + " -> " + residual.nodesAfter(), controlnet.nodesBefore() + " -> " + controlnet.nodesAfter());
    System.out.println("controlnet node counts " + target.id() + ": " + counts + "; controlnet fused " + fused(controlnet.opsAfter()));
    assertEquals(fused(plain.opsAfter()), fused(residual.opsAfter()), target.id());
    // The residual UNet keeps exactly one Add per residual input more than the plain one.
    int residuals = 10;
    assertEquals(plain.nodesAfter() + residuals, residual.nodesAfter(), target.id());
    assertEquals(NODE_COUNTS.get(target), counts, target.id());
  }

  @Test
  void zeroResidualsGiveThePlainUnetsOutput() {
    Path residualModel = Fixtures.component("unet_controlnet", Opset.V17);
    Map<String, OrtParity.Input> stored = FixtureModels.storedInputs(residualModel, 0);
    Map<String, OrtParity.Input> plainInputs = new LinkedHashMap<>();
    Map<String, OrtParity.Input> zeroInputs = new LinkedHashMap<>();
    stored.forEach((name, input) -> {
      if (name.contains("additional_residual")) {
        zeroInputs.put(name, OrtParity.Input.floats(input.shape(), new float[((float[]) input.values()).length]));
      } else {
        plainInputs.put(name, input);
        zeroInputs.put(name, input);
      }
    });
    assertEquals(10, zeroInputs.size() - plainInputs.size());
    double error = OrtParity.maxRelativeError(OrtParity.run(Fixtures.component("unet", Opset.V17), plainInputs),
        OrtParity.run(residualModel, zeroInputs));
    assertEquals(0.0, error, "adding zero residuals changes nothing");
    double withResiduals = OrtParity.maxRelativeError(OrtParity.run(Fixtures.component("unet", Opset.V17), plainInputs),
        OrtParity.run(residualModel, stored));
    assertTrue(withResiduals > 0.05, "the stored residuals move the output: " + withResiduals);
  }

  @Test
  void aPipelineFolderOptimizesItsControlNet() throws Exception {
    Path pipeline = Fixtures.controlNetPair(folder.resolve("in"));
    Path output = folder.resolve("out");
    OptimizationReport report = Optimizer.optimize(pipeline, output, Optimizer.Options.of(Target.CPU));
    Map<String, String> components = new TreeMap<>();
    report.components().forEach(component -> components.put(Path.of(component.path()).getParent().getFileName().toString(),
        component.component()));
    assertEquals(Map.of("controlnet", "controlnet", "unet", "unet"), components);
    assertTrue(Files.isRegularFile(output.resolve("controlnet/model.onnx")));
    assertTrue(Files.isRegularFile(output.resolve("controlnet/config.json")));
    ComponentReport controlnet = report.components().stream().filter(component -> component.component().equals("controlnet"))
        .findFirst().orElseThrow();
    assertEquals(Fixtures.manifest().component("controlnet").modules("Attention"),
        controlnet.opsAfter().getOrDefault("com.microsoft:MultiHeadAttention", 0));
  }
}
