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
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class SkipGroupNormFusionTest {
  private static final Map<String, Long> DIMENSIONS = Map.of("batch", 2L, "height", 6L, "width", 3L);

  /** ResNet norm2: GroupNorm(conv1(x) + temb[:, :, None, None]) + SiLU; optionally the sum is read again. */
  private static Model resnetSite(boolean sumReadAgain, boolean separateBias) {
    Sites sites = new Sites(3);
    Value x = sites.input("x", Sites.batch(), Shape.known(8), Shape.symbolic("height"), Shape.symbolic("width"));
    Value temb = sites.input("temb", Sites.batch(), Shape.known(8));
    Value hidden = sites.conv("/resnets.0/conv1", x, 8, 8, 3);
    if (separateBias) {
      hidden = sites.op(Onnx.ADD, "/resnets.0", hidden, sites.weight("/resnets.0/extra.bias", 8, 1, 1));
    }
    Value embedding = sites.op(Onnx.UNSQUEEZE, "/resnets.0",
        sites.op(Onnx.UNSQUEEZE, "/resnets.0", temb, sites.longVector("/resnets.0", 2)), sites.longVector("/resnets.0", 3));
    Value sum = sites.op(Onnx.ADD, "/resnets.0", hidden, embedding);
    Value normalized = sites.groupNorm("/resnets.0/norm2", sum, 8, 2, true, 1f);
    Value out = sumReadAgain ? sites.op(Onnx.ADD, "/resnets.0", normalized, sum) : normalized;
    return sites.model(out);
  }

  private static Node fused(Model model) {
    return model.graph().nodes().stream().filter(node -> node.is(Microsoft.SKIP_GROUP_NORM)).findFirst().orElseThrow();
  }

  @Test
  void fusesTheTimeEmbeddingAddWithoutTheSumOutput() {
    Model model = resnetSite(false, false);
    Path original = CudaRuleHarness.write(model, "original");
    String before = CudaRuleHarness.print(model);
    DriverReport report = CudaRuleHarness.run(model, GroupNormFusion.channelsLast(), new SkipGroupNormFusion());
    assertEquals(1, report.applied("skip-group-norm"));
    assertEquals(0, CudaRuleHarness.count(model, Microsoft.GROUP_NORM));
    Node node = fused(model);
    assertEquals(4, node.inputCount(), "no bias input");
    assertEquals(1, node.outputCount(), "S is not emitted when nothing else reads the sum");
    CudaRuleHarness.assertGolden("skip-group-norm", before, CudaRuleHarness.print(model));
    double error = CudaRuleHarness.parity(original, CudaRuleHarness.write(model, "fused"), DIMENSIONS, 9);
    assertTrue(error <= 1e-5, "relative error " + error);
  }

  @Test
  void emitsTheSumWhenSomethingElseReadsIt() {
    Model model = resnetSite(true, false);
    Path original = CudaRuleHarness.write(model, "original");
    CudaRuleHarness.run(model, GroupNormFusion.channelsLast(), new SkipGroupNormFusion());
    Node node = fused(model);
    assertTrue(node.output(1) != null && node.output(1).consumerCount() == 1, "S feeds the residual reader");
    double error = CudaRuleHarness.parity(original, CudaRuleHarness.write(model, "fused"), DIMENSIONS, 10);
    assertTrue(error <= 1e-5, "relative error " + error);
  }

  @Test
  void movesAPerChannelBiasIntoTheFifthInput() {
    Model model = resnetSite(false, true);
    Path original = CudaRuleHarness.write(model, "original");
    CudaRuleHarness.run(model, GroupNormFusion.channelsLast(), new SkipGroupNormFusion());
    Node node = fused(model);
    assertEquals(5, node.inputCount());
    assertEquals(List.of(8L), java.util.Arrays.stream(node.input(4).initializer().dims()).boxed().toList());
    double error = CudaRuleHarness.parity(original, CudaRuleHarness.write(model, "fused"), DIMENSIONS, 11);
    assertTrue(error <= 1e-5, "relative error " + error);
  }

  @Test
  void refusesASkipThatBroadcastsOverSpace() {
    Sites sites = new Sites(4);
    Value x = sites.input("x", Sites.batch(), Shape.known(8), Shape.symbolic("height"), Shape.symbolic("width"));
    Value row = sites.input("row", Sites.batch(), Shape.known(8), Shape.known(1), Shape.symbolic("width"));
    Value sum = sites.op(Onnx.ADD, "/block", x, row);
    Model model = sites.model(sites.groupNorm("/block/norm", sum, 8, 2, false, 1f));
    DriverReport report = CudaRuleHarness.run(model, GroupNormFusion.channelsLast(), new SkipGroupNormFusion());
    assertEquals(1, report.applied("group-norm"));
    assertEquals(0, report.applied("skip-group-norm"));
    String reason = report.stats("skip-group-norm").rejections().keySet().iterator().next();
    assertTrue(reason.startsWith("operand shapes") && reason.endsWith("are not input [N,C,H,W] plus skip [N,C,H,W] or [N,C,1,1]"),
        reason);
  }
}
