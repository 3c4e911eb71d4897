package dev.kiln.optimizer.lowering;

import dev.kiln.validator.lowering.Lowering;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.graph.Microsoft;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** BiasAdd lowered to standard ONNX against the reference. */
class BiasAddLoweringTest {

  @ParameterizedTest(name = "[{0}, {1}, {2}]")
  @CsvSource({"2, 6, 5", "1, 9, 3", "2, 16, 320"})
  void matchesReference(int batch, int sequence, int channels) {
    Random random = new Random(batch * 100 + sequence * 10 + channels);
    ReferenceOps.Tensor x = SingleNodeModel.random(random, 2, 0, batch, sequence, channels);
    ReferenceOps.Tensor skip = SingleNodeModel.random(random, 1, 1, batch, sequence, channels);
    float[] bias = SingleNodeModel.randomVector(random, channels, 1, 0);
    ReferenceOps.Tensor expected = ReferenceOps.biasAdd(x, bias, skip);
    float[] actual = new SingleNodeModel().feed("x", x).weight("bias", new long[] {channels}, bias).feed("skip", skip)
        .node(Microsoft.BIAS_ADD, 1).runLowered(Lowering.forOrtCpu()).get("output_0");
    double error = SingleNodeModel.maxAbsoluteError(expected.data(), actual);
    System.out.printf("LOWERING-ERROR BiasAdd %s: %.3g%n", SingleNodeModel.describe(x.shape()), error);
    assertTrue(error <= 1e-5, "max abs error " + error);
  }
}
