package dev.kiln.optimizer.lowering;

import dev.kiln.validator.lowering.Lowering;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.graph.Microsoft;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** BiasSplitGelu lowered to standard ONNX against the reference. */
class BiasSplitGeluLoweringTest {

  @ParameterizedTest(name = "[{0}, {1}, {2}] opset {3}")
  @CsvSource({"2, 5, 16, 17", "1, 7, 6, 14", "3, 1, 10, 17", "1, 64, 512, 18", "2, 9, 2, 11"})
  void matchesReference(int batch, int sequence, int hidden, long opset) {
    Random random = new Random(batch * 100 + sequence * 10 + hidden);
    ReferenceOps.Tensor x = SingleNodeModel.random(random, 2, 0, batch, sequence, hidden);
    float[] bias = SingleNodeModel.randomVector(random, hidden, 1, 0);
    ReferenceOps.Tensor expected = ReferenceOps.biasSplitGelu(x, bias);
    float[] actual = new SingleNodeModel(opset).feed("x", x).weight("bias", new long[] {hidden}, bias)
        .node(Microsoft.BIAS_SPLIT_GELU, 1).runLowered(Lowering.forOrtCpu()).get("output_0");
    double error = SingleNodeModel.maxAbsoluteError(expected.data(), actual);
    System.out.printf("LOWERING-ERROR BiasSplitGelu %s opset=%d: %.3g%n",
        SingleNodeModel.describe(x.shape()), opset, error);
    assertTrue(error <= 1e-5, "max abs error " + error);
  }
}
