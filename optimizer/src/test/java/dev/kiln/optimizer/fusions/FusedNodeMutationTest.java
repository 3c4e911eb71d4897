package dev.kiln.optimizer.fusions;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.graph.Attribute;
import dev.kiln.graph.Microsoft;
import dev.kiln.graph.Model;
import dev.kiln.graph.ModelReader;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.OpType;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import dev.kiln.optimizer.OrtParity;
import dev.kiln.validator.lowering.Lowering;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The CPU proof must be able to fail: mutate one attribute or input of a fused node, lower the copy, and the
 * comparison with the original graph in ORT must show it (relative error above 1e-4, or ORT refusing the graph).
 * The unmutated fused graph is the control and stays within 1e-5.
 */
class FusedNodeMutationTest {
  // Height equals the GroupNorm sites' channel count, so that a flipped channels_last still runs and shows in numbers.
  private static final Map<String, Long> IMAGE = Map.of("batch", 2L, "height", 8L, "width", 5L);
  private static final Map<String, Long> TOKENS = Map.of("batch", 2L, "sequence", 6L);

  private record Site(Path original, Path fused, Map<String, Long> dimensions) {}

  private static Site groupNormSite() {
    Sites sites = new Sites(21);
    Value x = sites.input("x", Sites.batch(), Shape.known(8), Shape.symbolic("height"), Shape.symbolic("width"));
    return fuse(sites.model(sites.groupNorm("/norm1", x, 8, 4, true, 1f)), IMAGE, GroupNormFusion.channelsLast());
  }

  private static Site skipGroupNormSite() {
    Sites sites = new Sites(22);
    Value x = sites.input("x", Sites.batch(), Shape.known(8), Shape.symbolic("height"), Shape.symbolic("width"));
    Value skip = sites.input("skip", Sites.batch(), Shape.known(8), Shape.symbolic("height"), Shape.symbolic("width"));
    Value biased = sites.op(Onnx.ADD, "/block", x, sites.weight("/block.bias", 8, 1, 1));
    Value sum = sites.op(Onnx.ADD, "/block", biased, skip);
    return fuse(sites.model(sites.groupNorm("/block/norm", sum, 8, 2, true, 1f)), IMAGE, GroupNormFusion.channelsLast(),
        new SkipGroupNormFusion());
  }

  private static Site biasSplitGeluSite() {
    Sites sites = new Sites(23);
    Value x = sites.input("x", Sites.batch(), Shape.symbolic("sequence"), Shape.known(8));
    return fuse(sites.model(sites.geglu("/ff", x, 8, 16, 2)), TOKENS, BiasSplitGeluFusion.anySize());
  }

  private static Site biasAddSite() {
    Sites sites = new Sites(24);
    Value h = sites.input("h", Sites.batch(), Shape.symbolic("sequence"), Shape.known(8));
    Value projected = sites.linear("/ff/net.2", h, 8, 8);
    return fuse(sites.model(sites.op(Onnx.ADD, "/block", projected, h)), TOKENS, BiasAddFusion.anySize());
  }

  private static Site nhwcConvSite() {
    Sites sites = new Sites(25);
    Value x = sites.input("x", Sites.batch(), Shape.known(4), Shape.symbolic("height"), Shape.symbolic("width"));
    return fuse(sites.model(sites.conv("/conv", x, 4, 6, 3)), IMAGE, new NhwcConvFusion());
  }

  private static Site fuse(Model model, Map<String, Long> dimensions, dev.kiln.optimizer.engine.Rule... rules) {
    Path original = CudaRuleHarness.write(model, "original");
    CudaRuleHarness.run(model, rules);
    return new Site(original, CudaRuleHarness.write(model, "fused"), dimensions);
  }

  static Stream<Arguments> mutations() {
    return Stream.of(
        mutation("GroupNorm", "none (control)", FusedNodeMutationTest::groupNormSite, Microsoft.GROUP_NORM, node -> {}),
        mutation("GroupNorm", "epsilon 1e-5 -> 1e-3", FusedNodeMutationTest::groupNormSite, Microsoft.GROUP_NORM,
            node -> node.setAttribute(Attribute.ofFloat("epsilon", 1e-3f))),
        mutation("GroupNorm", "groups 4 -> 2", FusedNodeMutationTest::groupNormSite, Microsoft.GROUP_NORM,
            node -> node.setAttribute(Attribute.ofInt("groups", 2))),
        mutation("GroupNorm", "activation 1 -> 0", FusedNodeMutationTest::groupNormSite, Microsoft.GROUP_NORM,
            node -> node.setAttribute(Attribute.ofInt("activation", 0))),
        mutation("GroupNorm", "channels_last 1 -> 0", FusedNodeMutationTest::groupNormSite, Microsoft.GROUP_NORM,
            node -> node.setAttribute(Attribute.ofInt("channels_last", 0))),
        mutation("GroupNorm", "beta zeroed", FusedNodeMutationTest::groupNormSite, Microsoft.GROUP_NORM,
            node -> zero(node, 2)),
        mutation("SkipGroupNorm", "none (control)", FusedNodeMutationTest::skipGroupNormSite, Microsoft.SKIP_GROUP_NORM,
            node -> {}),
        mutation("SkipGroupNorm", "bias dropped", FusedNodeMutationTest::skipGroupNormSite, Microsoft.SKIP_GROUP_NORM,
            node -> node.truncateInputs(4)),
        mutation("SkipGroupNorm", "bias zeroed", FusedNodeMutationTest::skipGroupNormSite, Microsoft.SKIP_GROUP_NORM,
            node -> zero(node, 4)),
        mutation("SkipGroupNorm", "epsilon 1e-5 -> 1e-3", FusedNodeMutationTest::skipGroupNormSite,
            Microsoft.SKIP_GROUP_NORM, node -> node.setAttribute(Attribute.ofFloat("epsilon", 1e-3f))),
        mutation("SkipGroupNorm", "groups 2 -> 4", FusedNodeMutationTest::skipGroupNormSite, Microsoft.SKIP_GROUP_NORM,
            node -> node.setAttribute(Attribute.ofInt("groups", 4))),
        mutation("SkipGroupNorm", "activation 1 -> 0", FusedNodeMutationTest::skipGroupNormSite,
            Microsoft.SKIP_GROUP_NORM, node -> node.setAttribute(Attribute.ofInt("activation", 0))),
        mutation("SkipGroupNorm", "channels_last 1 -> 0", FusedNodeMutationTest::skipGroupNormSite,
            Microsoft.SKIP_GROUP_NORM, node -> node.setAttribute(Attribute.ofInt("channels_last", 0))),
        mutation("BiasSplitGelu", "none (control)", FusedNodeMutationTest::biasSplitGeluSite, Microsoft.BIAS_SPLIT_GELU,
            node -> {}),
        mutation("BiasSplitGelu", "bias zeroed", FusedNodeMutationTest::biasSplitGeluSite, Microsoft.BIAS_SPLIT_GELU,
            node -> zero(node, 1)),
        mutation("BiasSplitGelu", "bias halves swapped", FusedNodeMutationTest::biasSplitGeluSite,
            Microsoft.BIAS_SPLIT_GELU, node -> swapHalves(node, 1)),
        mutation("BiasAdd", "none (control)", FusedNodeMutationTest::biasAddSite, Microsoft.BIAS_ADD, node -> {}),
        mutation("BiasAdd", "bias zeroed", FusedNodeMutationTest::biasAddSite, Microsoft.BIAS_ADD, node -> zero(node, 1)),
        mutation("BiasAdd", "skip replaced by the input", FusedNodeMutationTest::biasAddSite, Microsoft.BIAS_ADD,
            node -> node.setInput(2, node.input(0))),
        mutation("NhwcConv", "none (control)", FusedNodeMutationTest::nhwcConvSite, Microsoft.NHWC_CONV, node -> {}),
        mutation("NhwcConv", "bias dropped", FusedNodeMutationTest::nhwcConvSite, Microsoft.NHWC_CONV,
            node -> node.truncateInputs(2)),
        mutation("NhwcConv", "weight left in OIHW order", FusedNodeMutationTest::nhwcConvSite, Microsoft.NHWC_CONV,
            FusedNodeMutationTest::untransposeWeight),
        mutation("NhwcConv", "bias zeroed", FusedNodeMutationTest::nhwcConvSite, Microsoft.NHWC_CONV,
            node -> zero(node, 2)));
  }

  private static Arguments mutation(String op, String change, java.util.function.Supplier<Site> site, OpType type,
      Consumer<Node> mutate) {
    return Arguments.of(op, change, site, type, mutate);
  }

  @ParameterizedTest(name = "{0}: {1}")
  @MethodSource("mutations")
  void theNumericCheckSeesTheMutation(String op, String change, java.util.function.Supplier<Site> siteMaker,
      OpType type, Consumer<Node> mutate) {
    Site site = siteMaker.get();
    Model copy = ModelReader.read(site.fused());
    Node node = copy.graph().nodes().stream().filter(candidate -> candidate.is(type)).findFirst().orElseThrow();
    mutate.accept(node);
    Lowering.forOrtCpu().lower(copy);
    Path mutated = CudaRuleHarness.write(copy, "mutated");
    Map<String, OrtParity.Input> inputs = OrtParity.randomInputs(site.original(), site.dimensions(), 31, 10);
    String outcome;
    double error;
    try {
      error = OrtParity.compare(site.original(), mutated, inputs).maxRelativeError();
      outcome = String.format(Locale.ROOT, "%.3g", error);
    } catch (AssertionError refused) {
      error = Double.POSITIVE_INFINITY;
      String message = refused.getMessage().replaceAll("\\s+", " ");
      outcome = "ORT refuses: " + message.substring(0, Math.min(110, message.length()));
    }
    System.out.printf("MUTATION | %s | %s | %s%n", op, change, outcome);
    if (change.startsWith("none")) {
      assertTrue(error <= 1e-5, "the unmutated fused graph must match: " + outcome);
    } else {
      assertTrue(error > 1e-4, "mutation '" + change + "' of " + op + " went unnoticed: " + outcome);
    }
  }

  private static void zero(Node node, int input) {
    Value value = node.input(input);
    Tensor tensor = value.initializer();
    Value zeros = node.graph().addInitializer(value.name() + "_zeroed",
        Tensor.ofFloats(tensor.dims(), new float[Math.toIntExact(tensor.elementCount())]));
    node.setInput(input, zeros);
  }

  private static void swapHalves(Node node, int input) {
    Value value = node.input(input);
    float[] values = value.initializer().floats();
    int half = values.length / 2;
    float[] swapped = new float[values.length];
    System.arraycopy(values, half, swapped, 0, half);
    System.arraycopy(values, 0, swapped, half, half);
    node.setInput(input, node.graph().addInitializer(value.name() + "_swapped",
        Tensor.ofFloats(value.initializer().dims(), swapped)));
  }

  /** The OIHW order under OHWI dims: what a fusion that forgot to transpose the weight would store. */
  private static void untransposeWeight(Node node) {
    Value ohwi = node.input(1);
    long[] dims = ohwi.initializer().dims();
    int out = (int) dims[0];
    int height = (int) dims[1];
    int width = (int) dims[2];
    int in = (int) dims[3];
    float[] values = ohwi.initializer().floats();
    float[] oihw = new float[values.length];
    for (int o = 0; o < out; o++) {
      for (int y = 0; y < height; y++) {
        for (int x = 0; x < width; x++) {
          for (int i = 0; i < in; i++) {
            oihw[((o * in + i) * height + y) * width + x] = values[((o * height + y) * width + x) * in + i];
          }
        }
      }
    }
    node.setInput(1, node.graph().addInitializer(ohwi.name() + "_oihw", Tensor.ofFloats(dims, oihw)));
  }
}
