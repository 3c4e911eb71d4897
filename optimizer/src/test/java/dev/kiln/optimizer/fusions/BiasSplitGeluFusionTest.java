package dev.kiln.optimizer.fusions;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.graph.Microsoft;
import dev.kiln.graph.Model;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Value;
import dev.kiln.optimizer.engine.DriverReport;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;

class BiasSplitGeluFusionTest {
  private static final Map<String, Long> DIMENSIONS = Map.of("batch", 2L, "sequence", 9L);

  private static Model site(long divisor) {
    Sites sites = new Sites(5);
    Value x = sites.input("x", Sites.batch(), Shape.symbolic("sequence"), Shape.known(8));
    return sites.model(sites.geglu("/ff/net.0", x, 8, 16, divisor));
  }

  @Test
  void fusesGegluWithRunTimeSliceBounds() {
    Model model = site(2);
    Path original = CudaRuleHarness.write(model, "original");
    String before = CudaRuleHarness.print(model);
    DriverReport report = CudaRuleHarness.run(model, BiasSplitGeluFusion.anySize());
    assertEquals(1, report.applied("bias-split-gelu"));
    assertEquals(1, CudaRuleHarness.count(model, Microsoft.BIAS_SPLIT_GELU));
    assertEquals(0, CudaRuleHarness.count(model, Onnx.SLICE));
    assertEquals(0, CudaRuleHarness.count(model, Onnx.ERF));
    assertEquals(0, CudaRuleHarness.count(model, Onnx.SHAPE), "the bound chains die with the slices");
    CudaRuleHarness.assertGolden("bias-split-gelu", before, CudaRuleHarness.print(model));
    double error = CudaRuleHarness.parity(original, CudaRuleHarness.write(model, "fused"), DIMENSIONS, 12);
    assertTrue(error <= 1e-5, "relative error " + error);
  }

  @Test
  void refusesSlicesThatDoNotCutInHalves() {
    Model model = site(4);
    DriverReport report = CudaRuleHarness.run(model, BiasSplitGeluFusion.anySize());
    assertEquals(0, report.applied("bias-split-gelu"));
    String reason = report.stats("bias-split-gelu").rejections().keySet().iterator().next();
    assertTrue(reason.matches("slice .* does not take \\[0, 16\\) of the last axis"), reason);
  }

  @Test
  void withCudaKernelSizesOnlyRefusesAHiddenSizeTheKernelRejects() {
    Model model = site(2);
    DriverReport report = CudaRuleHarness.run(model, BiasSplitGeluFusion.cudaKernelSizesOnly());
    assertEquals(0, report.applied("bias-split-gelu"));
    assertEquals(Map.of("ORT's CUDA BiasSplitGelu kernel takes hidden size 2560, 5120 or 10240, not 32", 1),
        report.stats("bias-split-gelu").rejections());
  }
}
