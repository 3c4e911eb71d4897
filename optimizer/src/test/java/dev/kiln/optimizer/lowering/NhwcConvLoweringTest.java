package dev.kiln.optimizer.lowering;

import dev.kiln.validator.lowering.Lowering;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.graph.Attribute;
import dev.kiln.graph.Microsoft;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** NhwcConv (OHWI weights) lowered to Transpose → Conv → Transpose, against a direct NHWC convolution. */
class NhwcConvLoweringTest {

  @ParameterizedTest(name = "x=[{0},{1},{2},{3}] M={4} k={5}x{6} stride={7} pad={8} dilation={9} group={10} bias={11}")
  @CsvSource({
      "1, 8, 8, 4, 6, 3, 3, 1, 1, 1, 1, 1",
      "2, 7, 5, 3, 5, 3, 3, 2, 1, 1, 1, 1",
      "1, 6, 9, 8, 4, 1, 1, 1, 0, 1, 1, 0",
      "1, 9, 7, 6, 4, 3, 3, 1, 2, 2, 2, 1",
      "2, 5, 6, 3, 3, 3, 1, 1, 1, 1, 3, 0",
  })
  void matchesReference(int batch, int height, int width, int channels, int outChannels, int kernelHeight,
      int kernelWidth, int stride, int pad, int dilation, int group, int withBias) {
    Random random = new Random(batch + height * 10 + width * 100 + channels * 1000 + group);
    ReferenceOps.Tensor x = SingleNodeModel.random(random, 1, 0, batch, height, width, channels);
    ReferenceOps.Tensor weight = SingleNodeModel.random(random, 0.5, 0, outChannels, kernelHeight, kernelWidth,
        channels / group);
    float[] bias = withBias == 1 ? SingleNodeModel.randomVector(random, outChannels, 1, 0) : null;
    int[] pads = {pad, pad, pad, pad};
    if (kernelWidth == 1) {
      pads = new int[] {pad, 0, pad, 0};
    }
    ReferenceOps.Tensor expected = ReferenceOps.nhwcConv(x, weight, bias, new int[] {stride, stride}, pads,
        new int[] {dilation, dilation}, group);
    SingleNodeModel model = new SingleNodeModel().feed("x", x).weight("weight", weight.shape(), weight.data());
    if (bias != null) {
      model.weight("bias", new long[] {outChannels}, bias);
    }
    float[] actual = model.node(Microsoft.NHWC_CONV, 1,
            Attribute.ofInts("kernel_shape", kernelHeight, kernelWidth), Attribute.ofInts("strides", stride, stride),
            Attribute.ofInts("pads", pads[0], pads[1], pads[2], pads[3]),
            Attribute.ofInts("dilations", dilation, dilation), Attribute.ofInt("group", group))
        .runLowered(Lowering.forOrtCpu()).get("output_0");
    double error = SingleNodeModel.maxAbsoluteError(expected.data(), actual);
    System.out.printf("LOWERING-ERROR NhwcConv x=%s w=%s stride=%d pad=%d dilation=%d group=%d -> %s: %.3g%n",
        SingleNodeModel.describe(x.shape()), SingleNodeModel.describe(weight.shape()), stride, pad, dilation, group,
        SingleNodeModel.describe(expected.shape()), error);
    assertTrue(error <= 1e-5, "max abs error " + error);
  }
}
