package dev.kiln.optimizer.lowering;

import dev.kiln.validator.lowering.Lowering;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.common.KilnException;
import dev.kiln.graph.Attribute;
import dev.kiln.graph.Microsoft;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;

/** GroupNorm lowered to standard ONNX, run in ORT CPU, against the plain-Java reference of the spec. */
class GroupNormLoweringTest {

  @ParameterizedTest(name = "N={0} H={1} W={2} C={3} G={4} silu={5} channelsLast={6} eps={7} opset={8}")
  @CsvSource({
      "1, 4, 4, 8, 2, 0, 1, 1e-5, 17",
      "2, 3, 5, 6, 3, 1, 1, 1e-5, 17",
      "1, 7, 3, 12, 4, 1, 1, 1e-6, 14",
      "2, 5, 3, 9, 3, 0, 1, 0.1, 17",
      "1, 2, 6, 5, 5, 1, 1, 1e-5, 18",
      "2, 4, 6, 15, 5, 1, 0, 1e-5, 17",
      "1, 3, 8, 7, 1, 0, 0, 1e-5, 14",
      "3, 1, 1, 4, 2, 1, 1, 1e-5, 17",
  })
  void matchesReference(int n, int h, int w, int c, int groups, int silu, int channelsLast, float epsilon,
      long opset) {
    Random random = new Random(n * 1000 + h * 100 + w * 10 + c);
    long[] shape = channelsLast == 1 ? new long[] {n, h, w, c} : new long[] {n, c, h, w};
    ReferenceOps.Tensor x = SingleNodeModel.random(random, 2, 1, shape);
    float[] gamma = SingleNodeModel.randomVector(random, c, 1, 0.5);
    float[] beta = SingleNodeModel.randomVector(random, c, 1, 0);
    ReferenceOps.Tensor expected = ReferenceOps.groupNorm(x, gamma, beta, groups, epsilon, silu == 1,
        channelsLast == 1);
    float[] actual = new SingleNodeModel(opset).feed("x", x)
        .weight("gamma", new long[] {c}, gamma).weight("beta", new long[] {c}, beta)
        .node(Microsoft.GROUP_NORM, 1, Attribute.ofInt("groups", groups), Attribute.ofInt("activation", silu),
            Attribute.ofFloat("epsilon", epsilon), Attribute.ofInt("channels_last", channelsLast))
        .runLowered(Lowering.forOrtCpu()).get("output_0");
    double error = SingleNodeModel.maxAbsoluteError(expected.data(), actual);
    System.out.printf("LOWERING-ERROR GroupNorm %s G=%d silu=%d channels_last=%d eps=%g opset=%d: %.3g%n",
        SingleNodeModel.describe(shape), groups, silu, channelsLast, epsilon, opset, error);
    assertTrue(error <= 1e-5, "max abs error " + error);
  }

  @Test
  void ortCpuHasNoGroupNormKernel() {
    Random random = new Random(1);
    AssertionError refused = assertThrows(AssertionError.class, () -> new SingleNodeModel()
        .feed("x", SingleNodeModel.random(random, 1, 0, 1, 2, 2, 4))
        .weight("gamma", new long[] {4}, new float[] {1, 1, 1, 1}).weight("beta", new long[] {4}, new float[4])
        .node(Microsoft.GROUP_NORM, 1, Attribute.ofInt("groups", 2), Attribute.ofInt("activation", 0))
        .runAsIs());
    assertTrue(refused.getMessage().contains("Could not find an implementation for GroupNorm"), refused.getMessage());
  }

  @Test
  void refusesChannelsThatDoNotSplitIntoGroupsNamingTheNode() {
    Random random = new Random(2);
    SingleNodeModel model = new SingleNodeModel().feed("x", SingleNodeModel.random(random, 1, 0, 1, 2, 2, 6))
        .weight("gamma", new long[] {6}, new float[6]).weight("beta", new long[] {6}, new float[6])
        .node(Microsoft.GROUP_NORM, 1, Attribute.ofInt("groups", 4), Attribute.ofInt("activation", 0));
    KilnException.Unsupported failure = assertThrows(KilnException.Unsupported.class,
        () -> model.runLowered(Lowering.forOrtCpu()));
    assertTrue(failure.getMessage().contains("'/block/GroupNorm'")
        && failure.getMessage().contains("6 channels do not split into 4 groups"), failure.getMessage());
  }

  @Test
  void refusesAMissingRequiredAttribute() {
    Random random = new Random(3);
    SingleNodeModel model = new SingleNodeModel().feed("x", SingleNodeModel.random(random, 1, 0, 1, 2, 2, 4))
        .weight("gamma", new long[] {4}, new float[4]).weight("beta", new long[] {4}, new float[4])
        .node(Microsoft.GROUP_NORM, 1, Attribute.ofInt("activation", 0));
    KilnException.Unsupported failure = assertThrows(KilnException.Unsupported.class,
        () -> model.runLowered(Lowering.forOrtCpu()));
    assertTrue(failure.getMessage().contains("required attribute 'groups'"), failure.getMessage());
  }
}
