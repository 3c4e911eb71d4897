package dev.kiln.optimizer.fusions;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.graph.Attribute;
import dev.kiln.graph.Microsoft;
import dev.kiln.graph.Model;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import dev.kiln.optimizer.engine.DriverReport;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class NhwcConvFusionTest {
  private static final Map<String, Long> DIMENSIONS = Map.of("batch", 2L, "height", 5L, "width", 9L);

  @Test
  void fusesAConvWithAnOhwiWeightBetweenTransposes() {
    Sites sites = new Sites(9);
    Value x = sites.input("x", Sites.batch(), Shape.known(4), Shape.symbolic("height"), Shape.symbolic("width"));
    Model model = sites.model(sites.conv("/conv_in", x, 4, 6, 3));
    Tensor oihw = model.graph().findValue("/conv_in.weight").initializer();
    Path original = CudaRuleHarness.write(model, "original");
    String before = CudaRuleHarness.print(model);
    DriverReport report = CudaRuleHarness.run(model, new NhwcConvFusion());
    assertEquals(1, report.applied("nhwc-conv"));
    assertEquals(0, CudaRuleHarness.count(model, Onnx.CONV));
    Node conv = model.graph().nodes().stream().filter(node -> node.is(Microsoft.NHWC_CONV)).findFirst().orElseThrow();
    Tensor ohwi = conv.input(1).initializer();
    assertArrayEquals(new long[] {6, 3, 3, 4}, ohwi.dims());
    // element [o=5, y=2, x=1, i=3] of OHWI is [5, 3, 2, 1] of OIHW
    assertEquals(oihw.floats()[((5 * 4 + 3) * 3 + 2) * 3 + 1], ohwi.floats()[((5 * 3 + 2) * 3 + 1) * 4 + 3], 0);
    CudaRuleHarness.assertGolden("nhwc-conv", before, CudaRuleHarness.print(model));
    double error = CudaRuleHarness.parity(original, CudaRuleHarness.write(model, "fused"), DIMENSIONS, 14);
    assertTrue(error <= 1e-5, "relative error " + error);
  }

  @Test
  void refusesAOneDimensionalConvolution() {
    Sites sites = new Sites(10);
    Value x = sites.input("x", Sites.batch(), Shape.known(4), Shape.symbolic("width"));
    Model model = sites.model(sites.op(Onnx.CONV, "/conv1d", List.of(x, sites.weight("/conv1d.weight", 6, 4, 3)),
        Attribute.ofInts("kernel_shape", 3)));
    DriverReport report = CudaRuleHarness.run(model, new NhwcConvFusion());
    assertEquals(Map.of("weight has rank 3; only 2-D convolutions are fused", 1), report.stats("nhwc-conv").rejections());
  }
}
