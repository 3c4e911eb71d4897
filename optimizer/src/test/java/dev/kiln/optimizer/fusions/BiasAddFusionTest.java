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

class BiasAddFusionTest {
  private static final Map<String, Long> DIMENSIONS = Map.of("batch", 2L, "sequence", 6L);

  /** A transformer block's feed-forward output: ff(h) + h. */
  private static Model site() {
    Sites sites = new Sites(6);
    Value h = sites.input("h", Sites.batch(), Shape.symbolic("sequence"), Shape.known(8));
    Value projected = sites.linear("/transformer_blocks.0/ff/net.2", h, 8, 8);
    return sites.model(sites.op(Onnx.ADD, "/transformer_blocks.0", projected, h));
  }

  @Test
  void fusesTheLinearBiasAndTheResidual() {
    Model model = site();
    Path original = CudaRuleHarness.write(model, "original");
    String before = CudaRuleHarness.print(model);
    DriverReport report = CudaRuleHarness.run(model, BiasAddFusion.anySize());
    assertEquals(1, report.applied("bias-add"));
    assertEquals(1, CudaRuleHarness.count(model, Microsoft.BIAS_ADD));
    assertEquals(0, CudaRuleHarness.count(model, Onnx.ADD));
    CudaRuleHarness.assertGolden("bias-add", before, CudaRuleHarness.print(model));
    double error = CudaRuleHarness.parity(original, CudaRuleHarness.write(model, "fused"), DIMENSIONS, 13);
    assertTrue(error <= 1e-5, "relative error " + error);
  }

  @Test
  void refusesASkipThatBroadcasts() {
    Sites sites = new Sites(7);
    Value h = sites.input("h", Sites.batch(), Shape.symbolic("sequence"), Shape.known(8));
    Value position = sites.input("position", Shape.known(1), Shape.symbolic("sequence"), Shape.known(8));
    Value projected = sites.linear("/block/proj", h, 8, 8);
    Model model = sites.model(sites.op(Onnx.ADD, "/block", projected, position));
    DriverReport report = CudaRuleHarness.run(model, BiasAddFusion.anySize());
    assertEquals(0, report.applied("bias-add"));
    assertEquals(Map.of("skip shape [1,'sequence',8] is not provably the input's ['batch','sequence',8]", 1),
        report.stats("bias-add").rejections());
  }

  @Test
  void refusesAnAddThatDoesNotFollowALinearLayer() {
    Sites sites = new Sites(8);
    Value h = sites.input("h", Sites.batch(), Shape.symbolic("sequence"), Shape.known(8));
    Value biased = sites.op(Onnx.ADD, "/block", h, sites.weight("/block.bias", 8));
    Model model = sites.model(sites.op(Onnx.ADD, "/block", biased, sites.op(Onnx.RELU, "/block", h)));
    DriverReport report = CudaRuleHarness.run(model, BiasAddFusion.anySize());
    assertEquals(Map.of("the biased input is not a MatMul output (not a linear layer)", 1),
        report.stats("bias-add").rejections());
  }
}
