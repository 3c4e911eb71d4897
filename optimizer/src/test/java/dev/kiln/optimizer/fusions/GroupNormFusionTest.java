package dev.kiln.optimizer.fusions;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.graph.Microsoft;
import dev.kiln.graph.Model;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Value;
import dev.kiln.optimizer.engine.DriverReport;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;

class GroupNormFusionTest {
  private static final Map<String, Long> DIMENSIONS = Map.of("batch", 2L, "height", 5L, "width", 7L);

  private static Model site(boolean silu, float instanceScale) {
    Sites sites = new Sites(1);
    Value x = sites.input("x", Sites.batch(), Shape.known(8), Shape.symbolic("height"), Shape.symbolic("width"));
    return sites.model(sites.groupNorm("/norm1", x, 8, 4, silu, instanceScale));
  }

  @Test
  void fusesGroupNormAndSiluIntoOneChannelsLastNode() {
    Model model = site(true, 1f);
    Path original = CudaRuleHarness.write(model, "original");
    String before = CudaRuleHarness.print(model);
    DriverReport report = CudaRuleHarness.run(model, GroupNormFusion.channelsLast());
    assertEquals(1, report.applied("group-norm"));
    assertEquals(1, CudaRuleHarness.count(model, Microsoft.GROUP_NORM));
    assertEquals(0, CudaRuleHarness.count(model, Onnx.INSTANCE_NORMALIZATION));
    assertEquals(0, CudaRuleHarness.count(model, Onnx.SIGMOID));
    Node fused = model.graph().nodes().stream().filter(node -> node.is(Microsoft.GROUP_NORM)).findFirst().orElseThrow();
    assertEquals(1, fused.intAttribute("activation", -1));
    assertEquals(1, fused.intAttribute("channels_last", -1));
    assertEquals(4, fused.intAttribute("groups", -1));
    assertEquals(1e-5f, fused.floatAttribute("epsilon", 0), 0);
    CudaRuleHarness.assertGolden("group-norm", before, CudaRuleHarness.print(model));
    double error = CudaRuleHarness.parity(original, CudaRuleHarness.write(model, "fused"), DIMENSIONS, 7);
    assertTrue(error <= 1e-5, "relative error " + error);
  }

  @Test
  void withoutSiluTheActivationIsZero() {
    Model model = site(false, 1f);
    Path original = CudaRuleHarness.write(model, "original");
    CudaRuleHarness.run(model, GroupNormFusion.channelsLast());
    Node fused = model.graph().nodes().stream().filter(node -> node.is(Microsoft.GROUP_NORM)).findFirst().orElseThrow();
    assertEquals(0, fused.intAttribute("activation", -1));
    double error = CudaRuleHarness.parity(original, CudaRuleHarness.write(model, "fused"), DIMENSIONS, 8);
    assertTrue(error <= 1e-5, "relative error " + error);
  }

  @Test
  void refusesAnInstanceNormWhoseScaleIsNotOne() {
    Model model = site(true, 2f);
    DriverReport report = CudaRuleHarness.run(model, GroupNormFusion.channelsLast());
    assertEquals(0, report.applied("group-norm"));
    assertEquals(1, report.stats("group-norm").rejections().get("InstanceNormalization scale is not 4 ones"),
        report.stats("group-norm").rejections().toString());
  }

  @Test
  void refusesWhenTheShapeOfXIsUnknown() {
    Sites sites = new Sites(2);
    Value x = sites.input("x", Sites.batch(), Shape.UNKNOWN, Shape.symbolic("height"), Shape.symbolic("width"));
    Model model = sites.model(sites.groupNorm("/norm", x, 8, 4, false, 1f));
    DriverReport report = CudaRuleHarness.run(model, GroupNormFusion.channelsLast());
    assertEquals(0, report.applied("group-norm"));
    assertTrue(report.stats("group-norm").rejections().containsKey("channel count of x unknown"),
        report.stats("group-norm").rejections().toString());
  }
}
