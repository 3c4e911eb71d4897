package dev.kiln.optimizer.lowering;

import dev.kiln.validator.lowering.Lowering;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.graph.Attribute;
import dev.kiln.graph.Microsoft;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** SkipGroupNorm lowered to standard ONNX against the reference: every skip form, with and without bias and S. */
class SkipGroupNormLoweringTest {

  @ParameterizedTest(name = "N={0} H={1} W={2} C={3} G={4} skip={5} bias={6} S={7} channelsLast={8} silu={9}")
  @CsvSource({
      "2, 4, 4, 8, 4, full, 1, 1, 1, 1",
      "1, 3, 5, 6, 2, n11c, 0, 0, 1, 0",
      "2, 5, 3, 9, 3, nc, 1, 1, 1, 1",
      "1, 6, 2, 5, 5, full, 0, 1, 1, 0",
      "2, 3, 4, 6, 3, nc, 1, 0, 0, 1",
      "1, 2, 5, 8, 2, full, 1, 1, 0, 0",
  })
  void matchesReference(int n, int h, int w, int c, int groups, String skipForm, int withBias, int withSum,
      int channelsLast, int silu) {
    Random random = new Random(17L * n + 31L * h + 7L * w + c);
    long[] shape = channelsLast == 1 ? new long[] {n, h, w, c} : new long[] {n, c, h, w};
    long[] skipShape = switch (skipForm) {
      case "full" -> shape;
      case "n11c" -> channelsLast == 1 ? new long[] {n, 1, 1, c} : new long[] {n, c, 1, 1};
      case "nc" -> new long[] {n, c};
      default -> throw new IllegalArgumentException(skipForm);
    };
    ReferenceOps.Tensor x = SingleNodeModel.random(random, 2, 1, shape);
    ReferenceOps.Tensor skip = SingleNodeModel.random(random, 1, -0.5, skipShape);
    float[] gamma = SingleNodeModel.randomVector(random, c, 1, 0.5);
    float[] beta = SingleNodeModel.randomVector(random, c, 1, 0);
    float[] bias = withBias == 1 ? SingleNodeModel.randomVector(random, c, 1, 0.25) : null;
    ReferenceOps.Tensor[] expected = ReferenceOps.skipGroupNorm(x, gamma, beta, skip, bias, groups, 1e-5f, silu == 1,
        channelsLast == 1);
    SingleNodeModel model = new SingleNodeModel().feed("x", x)
        .weight("gamma", new long[] {c}, gamma).weight("beta", new long[] {c}, beta).feed("skip", skip);
    if (bias != null) {
      model.weight("bias", new long[] {c}, bias);
    }
    Map<String, float[]> actual = model.node(Microsoft.SKIP_GROUP_NORM, withSum == 1 ? 2 : 1,
            Attribute.ofInt("groups", groups), Attribute.ofInt("activation", silu), Attribute.ofFloat("epsilon", 1e-5f),
            Attribute.ofInt("channels_last", channelsLast))
        .runLowered(Lowering.forOrtCpu());
    double error = SingleNodeModel.maxAbsoluteError(expected[0].data(), actual.get("output_0"));
    if (withSum == 1) {
      error = Math.max(error, SingleNodeModel.maxAbsoluteError(expected[1].data(), actual.get("output_1")));
    }
    System.out.printf("LOWERING-ERROR SkipGroupNorm %s skip=%s bias=%d S=%d channels_last=%d silu=%d: %.3g%n",
        SingleNodeModel.describe(shape), SingleNodeModel.describe(skipShape), withBias, withSum, channelsLast, silu,
        error);
    assertTrue(error <= 1e-5, "max abs error " + error);
  }
}
