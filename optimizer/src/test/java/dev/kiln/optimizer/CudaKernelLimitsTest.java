package dev.kiln.optimizer;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kiln.graph.Model;
import dev.kiln.graph.ModelReader;
import dev.kiln.optimizer.OptimizationReport.ComponentReport;
import dev.kiln.optimizer.profiles.Target;
import dev.kiln.testdata.Fixtures;
import dev.kiln.testdata.Manifest;
import dev.kiln.testdata.Opset;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The deployed cuda profile never emits a BiasSplitGelu or BiasAdd that ORT's CUDA kernels would reject at run
 * time: the fixture UNet's 32-channel blocks (GEGLU hidden 256) get neither, each site declined with the size,
 * while everything else still fuses as with the limits lifted.
 */
class CudaKernelLimitsTest {
  @Test
  void smallUnetKeepsItsGegluAndBiasAddsUnfusedAndSaysWhy() {
    Manifest.Component inventory = Fixtures.manifest().component("unet");
    Model limited = ModelReader.read(Fixtures.unet(Opset.V17));
    ComponentReport deployed = Optimizer.optimize(limited, "unet", Optimizer.Options.of(Target.CUDA));
    Model lifted = ModelReader.read(Fixtures.unet(Opset.V17));
    ComponentReport experimental =
        Optimizer.optimize(lifted, "unet", Optimizer.Options.of(Target.CUDA).withoutCudaKernelLimits());

    int geglu = inventory.modules("GEGLU");
    assertEquals(0, deployed.opsAfter().getOrDefault("com.microsoft:BiasSplitGelu", 0));
    assertEquals(0, deployed.opsAfter().getOrDefault("com.microsoft:BiasAdd", 0));
    assertEquals(geglu, experimental.opsAfter().get("com.microsoft:BiasSplitGelu"));
    assertEquals(11, experimental.opsAfter().get("com.microsoft:BiasAdd"));

    Map<String, Integer> splitReasons = deployed.rules().get("bias-split-gelu").rejected();
    int declinedForSize = splitReasons.entrySet().stream()
        .filter(reason -> reason.getKey().startsWith("ORT's CUDA BiasSplitGelu kernel takes hidden size 2560, 5120 or 10240"))
        .mapToInt(Map.Entry::getValue).sum();
    assertEquals(geglu, declinedForSize, "every GEGLU declined for its size: " + splitReasons);
    assertEquals(11, deployed.rules().get("bias-add").rejected().entrySet().stream()
        .filter(reason -> reason.getKey().startsWith("ORT's CUDA BiasAdd kernel takes 320, 640 or 1280 channels"))
        .mapToInt(Map.Entry::getValue).sum(), "every BiasAdd site declined for its size: " + deployed.rules().get("bias-add"));

    for (String op : new String[] {"com.microsoft:GroupNorm", "com.microsoft:SkipGroupNorm", "com.microsoft:NhwcConv",
        "com.microsoft:MultiHeadAttention"}) {
      assertEquals(experimental.opsAfter().get(op), deployed.opsAfter().get(op), op + " fuses regardless of the limits");
    }
  }
}
