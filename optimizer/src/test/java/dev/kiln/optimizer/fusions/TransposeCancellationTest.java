package dev.kiln.optimizer.fusions;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.graph.Attribute;
import dev.kiln.graph.Microsoft;
import dev.kiln.graph.Model;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Value;
import dev.kiln.optimizer.engine.DriverReport;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class TransposeCancellationTest {
  private static final Map<String, Long> DIMENSIONS = Map.of("batch", 1L, "height", 6L, "width", 4L);

  @Test
  void cancelsTheTransposesBetweenConvGroupNormAndConv() {
    Sites sites = new Sites(11);
    Value x = sites.input("x", Sites.batch(), Shape.known(4), Shape.symbolic("height"), Shape.symbolic("width"));
    Value hidden = sites.conv("/resnets.0/conv1", x, 4, 8, 3);
    Value normalized = sites.groupNorm("/resnets.0/norm2", hidden, 8, 4, true, 1f);
    Model model = sites.model(sites.conv("/resnets.0/conv2", normalized, 8, 8, 3));
    Path original = CudaRuleHarness.write(model, "original");
    DriverReport report = CudaRuleHarness.run(model, GroupNormFusion.channelsLast(), new NhwcConvFusion(),
        new TransposeCancellation());
    assertEquals(2, report.applied("transpose-cancel"), "two pairs: conv1→norm and norm→conv2");
    // What is left: NCHW→NHWC at the input and NHWC→NCHW at the output.
    assertEquals(2, CudaRuleHarness.count(model, Onnx.TRANSPOSE));
    assertEquals(2, CudaRuleHarness.count(model, Microsoft.NHWC_CONV));
    double error = CudaRuleHarness.parity(original, CudaRuleHarness.write(model, "fused"), DIMENSIONS, 15);
    assertTrue(error <= 1e-5, "relative error " + error);
  }

  @Test
  void cancelsAnInversePairAndKeepsAnInnerTransposeThatIsReadElsewhere() {
    Sites sites = new Sites(12);
    Value x = sites.input("x", Sites.batch(), Shape.known(3), Shape.symbolic("height"), Shape.symbolic("width"));
    Value nhwc = sites.op(Onnx.TRANSPOSE, "/layout", List.of(x), Attribute.ofInts("perm", 0, 2, 3, 1));
    Value back = sites.op(Onnx.TRANSPOSE, "/layout", List.of(nhwc), Attribute.ofInts("perm", 0, 3, 1, 2));
    Model model = sites.model(sites.op(Onnx.RELU, "/act", back), sites.op(Onnx.SIGMOID, "/other", nhwc));
    String before = CudaRuleHarness.print(model);
    DriverReport report = CudaRuleHarness.run(model, new TransposeCancellation());
    assertEquals(1, report.applied("transpose-cancel"));
    assertEquals(1, CudaRuleHarness.count(model, Onnx.TRANSPOSE));
    CudaRuleHarness.assertGolden("transpose-cancel", before, CudaRuleHarness.print(model));
  }

  @Test
  void refusesPermutationsThatDoNotCancel() {
    Sites sites = new Sites(13);
    Value x = sites.input("x", Sites.batch(), Shape.known(3), Shape.symbolic("height"), Shape.symbolic("width"));
    Value once = sites.op(Onnx.TRANSPOSE, "/layout", List.of(x), Attribute.ofInts("perm", 0, 2, 3, 1));
    Value twice = sites.op(Onnx.TRANSPOSE, "/layout", List.of(once), Attribute.ofInts("perm", 0, 2, 3, 1));
    Model model = sites.model(twice);
    DriverReport report = CudaRuleHarness.run(model, new TransposeCancellation());
    assertEquals(Map.of("permutations [0, 2, 3, 1] then [0, 2, 3, 1] do not cancel", 1),
        report.stats("transpose-cancel").rejections());
  }
}
