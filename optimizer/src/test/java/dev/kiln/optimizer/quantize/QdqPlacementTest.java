package dev.kiln.optimizer.quantize;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.common.KilnException;
import dev.kiln.graph.DataType;
import dev.kiln.graph.Model;
import dev.kiln.graph.ModelWriter;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Value;
import dev.kiln.graph.Verifier;
import dev.kiln.optimizer.precision.Precision;
import dev.kiln.optimizer.precision.PrecisionOptions;
import dev.kiln.graph.Tensor;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Where the quantizer puts Q/DQ on small graphs, with what numbers, and what ORT's CPU provider makes of it. */
class QdqPlacementTest {
  private static final Int8Options ALL_LAYERS = Int8Options.DEFAULT.withKeepDefaults(false);

  @TempDir Path temporary;

  /**
   * Quantizes with 4 seeded sets, verified on those same sets: these graphs' tensors hold a few hundred values, so a
   * held-out set's extremes routinely pass the calibrated range by 20% and the clipped peak is the scale-relative
   * error; on the calibration inputs the parity measures the rounding alone. Held-out parity is asserted on tiny-sd.
   */
  private static Int8Report quantize(Model model, long seed, Int8Options options) {
    List<dev.kiln.optimizer.precision.CalibrationSets.Set> sets = SmallGraphs.sets(model, 4, seed);
    return Int8Quantization.quantize(model, sets, sets, "seeded", options);
  }

  private static List<Node> nodes(Model model, dev.kiln.graph.OpType type) {
    return model.graph().nodes().stream().filter(node -> node.is(type)).toList();
  }

  private static Node producer(Node consumer, int input) {
    return consumer.input(input).producer();
  }

  @Test
  void fullConvsBecomeQLinearConvWithPerChannelWeightsAndInt32Bias() {
    Model model = SmallGraphs.convs();
    float[] weight = model.graph().findValue("w1").initializer().floats();
    float[] bias = model.graph().findValue("b1").initializer().floats();
    Int8Report report = quantize(model, 1,
        ALL_LAYERS.withScheme(Int8Options.Scheme.FULL));
    Verifier.verify(model);
    assertEquals(2, report.int8Nodes());
    assertEquals(0, report.weightOnlyNodes());
    // Q per activation tensor (x, conv1's output, relu's output, conv2's output); DQ per consumer plus 2 weights, 1 bias.
    assertEquals(4, report.quantizeNodes());
    assertEquals(7, report.dequantizeNodes());
    // ORT keeps a Q/DQ pair at the graph's input and output and one around the Relu between the convs.
    assertEquals(Map.of("QLinearConv", 2, "QuantizeLinear", 2, "DequantizeLinear", 2), report.ortKernels());

    Node conv = model.graph().findNode("/block/conv1/Conv");
    Node input = producer(conv, 0);
    Node weights = producer(conv, 1);
    Node biases = producer(conv, 2);
    assertTrue(input.is(Onnx.DEQUANTIZE_LINEAR) && producer(input, 0).is(Onnx.QUANTIZE_LINEAR));
    assertEquals(DataType.UINT8, input.input(2).initializer().dataType());
    assertTrue(weights.is(Onnx.DEQUANTIZE_LINEAR));
    assertEquals(0, weights.intAttribute("axis", -1));
    Tensor quantizedWeight = weights.input(0).initializer();
    assertEquals(DataType.INT8, quantizedWeight.dataType());
    float[] scales = weights.input(1).initializer().floats();
    float[] expected = PerChannelWeights.scales(weight, new long[] {4, 3, 3, 3}, 0);
    assertArrayEquals(expected, scales);
    for (int channel = 0; channel < 4; channel++) {
      float peak = 0;
      for (int i = channel * 27; i < channel * 27 + 27; i++) {
        peak = Math.max(peak, Math.abs(weight[i]));
      }
      assertEquals(peak / 127, scales[channel]);
    }
    assertArrayEquals(new long[] {0, 0, 0, 0}, weights.input(2).initializer().longs(), "symmetric: zero points 0");
    assertEquals(DataType.INT32, biases.input(0).initializer().dataType());
    float inputScale = input.input(1).initializer().floats()[0];
    float[] biasScales = biases.input(1).initializer().floats();
    long[] biasValues = biases.input(0).initializer().longs();
    for (int channel = 0; channel < 4; channel++) {
      assertEquals(inputScale * scales[channel], biasScales[channel]);
      assertEquals(Math.rint(bias[channel] / (double) biasScales[channel]), biasValues[channel]);
    }
    // The conv's only consumer is its output Q (ORT folds it into QLinearConv).
    assertEquals(1, conv.output(0).uses().size());
    assertTrue(conv.output(0).uses().get(0).node().is(Onnx.QUANTIZE_LINEAR));
    assertTrue(report.parity().get("y") < 0.03, "parity " + report.parity());
  }

  @Test
  void projectionMatMulBecomesMatMulIntegerToFloatAndScoresStayFloat() {
    Model model = SmallGraphs.projectionAndScores();
    Int8Report report = quantize(model, 2,
        ALL_LAYERS.withScheme(Int8Options.Scheme.FULL));
    assertEquals(1, report.int8Nodes());
    Node projection = model.graph().findNode("/attn/to_q/MatMul");
    Node weights = producer(projection, 1);
    assertEquals(1, weights.intAttribute("axis", -1), "per output column");
    assertEquals(6, weights.input(1).initializer().elementCount());
    Node scores = model.graph().findNode("/attn/MatMul");
    assertTrue(scores.inputs().stream().noneMatch(value -> value.producer() != null
        && value.producer().is(Onnx.DEQUANTIZE_LINEAR)), "scores read float activations");
    assertEquals(1, report.ortKernels().get("com.microsoft:MatMulIntegerToFloat"));
    assertEquals(1, report.quantizeNodes());
    assertTrue(report.parity().get("y") < 0.03, "parity " + report.parity());
  }

  @Test
  void hybridKeepsMatMulActivationsFloatAndWeightsOnlyAddsNoQuantizeLinear() {
    Model attention = SmallGraphs.projectionAndScores();
    Int8Report hybrid = quantize(attention, 3, ALL_LAYERS);
    assertEquals(0, hybrid.int8Nodes());
    assertEquals(1, hybrid.weightOnlyNodes());
    assertEquals(0, hybrid.quantizeNodes());
    assertEquals(Map.of("DequantizeLinear", 1), hybrid.ortKernels());

    Model convs = SmallGraphs.convs();
    long before = convs.graph().initializers().stream().mapToLong(value -> value.initializer().byteSize()).sum();
    Int8Report weights = quantize(convs, 4,
        ALL_LAYERS.withScheme(Int8Options.Scheme.WEIGHTS));
    assertEquals(2, weights.weightOnlyNodes());
    assertEquals(0, weights.quantizeNodes());
    assertEquals(2, weights.dequantizeNodes());
    // ORT runs the two DequantizeLinear nodes on every call and the convs in float: no int8 kernel.
    assertEquals(Map.of("DequantizeLinear", 2), weights.ortKernels());
    assertEquals(before, weights.bytesBefore());
    // 124 weights at 4 bytes become 1 byte each plus a scale and a zero point per channel; the bias stays float.
    assertEquals((108 + 16) + 8 * 4 + 8 + 4 * 4, weights.bytesAfter());
    assertTrue(weights.parity().get("y") < 0.01, "parity " + weights.parity());
  }

  @Test
  void defaultKeptLayersStayFloatWithTheirReasons() {
    Model model = SmallGraphs.convs();
    Int8Report report = quantize(model, 5, Int8Options.DEFAULT);
    // conv1 reads the graph input (conv_in); the 1x1 conv is a residual shortcut by its scope.
    assertEquals(List.of("/block/conv1/Conv", "/block/conv_shortcut/Conv"), List.copyOf(report.floatKept().keySet()));
    assertTrue(report.floatKept().get("/block/conv1/Conv").reason().startsWith("first conv"));
    assertTrue(report.floatKept().get("/block/conv_shortcut/Conv").reason().startsWith("residual shortcut"));
    Node kept = model.graph().findNode("/block/conv1/Conv");
    assertTrue(kept.input(1).isInitializer() && kept.input(1).initializer().dataType() == DataType.FLOAT);
    assertEquals(0, report.int8Nodes());
    assertEquals(0, report.quantizeNodes());
  }

  @Test
  void perLayerAddedErrorQuantizesOneLayerAtATime() {
    Model model = SmallGraphs.convs();
    Int8Report report = quantize(model, 6,
        Int8Options.DEFAULT.withLayerError(true));
    assertEquals(2, report.layerErrors().size());
    Int8Report.LayerError first = report.layerErrors().get(0);
    assertTrue(first.addedError() >= report.layerErrors().get(1).addedError(), "sorted worst first");
    assertTrue(report.layerErrors().stream().allMatch(layer -> layer.addedError() > 0 && layer.addedError() < 0.05),
        report.layerErrors().toString());
    assertTrue(report.layerErrors().stream().anyMatch(Int8Report.LayerError::keptByDefault));
  }

  @Test
  void sameInputGivesByteIdenticalOutput() {
    Model first = SmallGraphs.convs();
    Model second = SmallGraphs.convs();
    quantize(first, 8, ALL_LAYERS.withScheme(Int8Options.Scheme.FULL));
    quantize(second, 8, ALL_LAYERS.withScheme(Int8Options.Scheme.FULL));
    assertArrayEquals(ModelWriter.toBytes(first), ModelWriter.toBytes(second));
  }

  @Test
  void signedActivationsUseInt8ZeroPointsAndStillSelectQLinearConv() {
    Model model = SmallGraphs.convs();
    Int8Report report = quantize(model, 9,
        ALL_LAYERS.withScheme(Int8Options.Scheme.FULL).withSignedActivations(true));
    Node conv = model.graph().findNode("/block/conv1/Conv");
    assertEquals(DataType.INT8, producer(conv, 0).input(2).initializer().dataType());
    assertEquals(2, report.ortKernels().get("QLinearConv"));
    assertEquals("int8", report.activations());
  }

  @Test
  void calibrationInputOfTheWrongShapeIsRefusedNamingInputAndShape() throws Exception {
    Model model = SmallGraphs.convs();
    Path folder = Files.createDirectories(temporary.resolve("calibration/test_data_set_0"));
    Files.write(folder.resolve("input_0.pb"), ModelWriter.tensorBytes(Tensor.ofFloats(new long[] {1, 3, 4, 4},
        new float[48]), "x"));
    Path source = temporary.resolve("model.onnx");
    ModelWriter.write(model, source);
    PrecisionOptions options = new PrecisionOptions(PrecisionOptions.Mode.INT8,
        dev.kiln.optimizer.precision.Fp16Conversion.Options.defaults(), temporary.resolve("calibration"), 1e-2);
    KilnException.BadInput error = assertThrows(KilnException.BadInput.class,
        () -> Precision.apply(model, source, null, options));
    assertTrue(error.getMessage().contains("'x'") && error.getMessage().contains("[1, 4, 4]")
        || error.getMessage().contains("'x'"), error.getMessage());
    assertTrue(error.getMessage().contains("input_0.pb"), error.getMessage());
  }

  @Test
  void oldOpsetsAreRefused() {
    Model model = SmallGraphs.convs();
    model.opsetImports().put("", 11L);
    assertThrows(KilnException.Unsupported.class, () -> Int8Quantization.quantize(model,
        SmallGraphs.sets(model, 1, 1), "seeded", Int8Options.DEFAULT));
  }

  @Test
  void candidatesNeedConstantWeights() {
    Model model = SmallGraphs.projectionAndScores();
    assertEquals(List.of("/attn/to_q/MatMul"), Int8Quantization.candidates(model).stream().map(Node::name).toList());
    assertNull(MatMulQuantization.unsupported(model.graph().findNode("/attn/to_q/MatMul")));
    assertTrue(MatMulQuantization.unsupported(model.graph().findNode("/attn/MatMul")).contains("activations"));
    Value unused = model.graph().findValue("w");
    assertEquals(DataType.FLOAT, unused.initializer().dataType());
  }

  @Test
  void aConvWritingTheGraphOutputKeepsTheOutputNameAndStillFuses() {
    Model model = SmallGraphs.convWritingOutput();
    Int8Report report = quantize(model, 10, ALL_LAYERS.withScheme(Int8Options.Scheme.FULL));
    Verifier.verify(model);
    Value output = model.graph().outputs().get(0);
    assertEquals("y", output.name());
    assertTrue(output.producer().is(Onnx.DEQUANTIZE_LINEAR));
    assertEquals(DataType.FLOAT, output.dataType());
    assertEquals(1, report.ortKernels().get("QLinearConv"));
    assertTrue(report.parity().get("y") < 0.03, "parity " + report.parity());
    // Kept by default: it writes the graph output.
    Model again = SmallGraphs.convWritingOutput();
    assertTrue(quantize(again, 10, Int8Options.DEFAULT).floatKept().get("/out/Conv").reason().startsWith("last conv"));
  }
}
