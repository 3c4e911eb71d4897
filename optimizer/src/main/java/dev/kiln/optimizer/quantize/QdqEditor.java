package dev.kiln.optimizer.quantize;

import dev.kiln.graph.Attribute;
import dev.kiln.graph.DataType;
import dev.kiln.graph.GraphEditor;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Use;
import dev.kiln.graph.Value;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * Inserts QuantizeLinear/DequantizeLinear through the graph's one editor. An activation is quantized once (one
 * QuantizeLinear per tensor, shared) and dequantized once per consumer: ORT's QDQ selectors fuse a DequantizeLinear
 * into its consumer only when the consumer is its single output edge.
 */
final class QdqEditor {
  private final GraphEditor editor;
  private final Function<Value, QuantizationParameters> activationParameters;
  /** Original float activation → its QuantizeLinear output. */
  private final Map<Value, Value> quantized = new IdentityHashMap<>();
  /** QuantizeLinear output → the parameters it was made with. */
  private final Map<Value, QuantizationParameters> parameters = new IdentityHashMap<>();
  private int quantizeNodes;
  private int dequantizeNodes;

  QdqEditor(GraphEditor editor, Function<Value, QuantizationParameters> activationParameters) {
    this.editor = editor;
    this.activationParameters = activationParameters;
  }

  /**
   * Makes input {@code index} of {@code consumer} read its activation through Q → DQ, and answers the parameters
   * used. An input that already is the dequantized view of a quantized tensor (a quantized conv's output) is kept.
   */
  QuantizationParameters quantizeInput(Node consumer, int index) {
    Value input = consumer.input(index);
    Node producer = input.producer();
    if (producer != null && producer.is(Onnx.DEQUANTIZE_LINEAR) && parameters.containsKey(producer.input(0))) {
      return parameters.get(producer.input(0));
    }
    Value quantizedValue = quantized.get(input);
    if (quantizedValue == null) {
      QuantizationParameters chosen = activationParameters.apply(input);
      quantizedValue = quantize(input, chosen, consumer);
    }
    QuantizationParameters chosen = parameters.get(quantizedValue);
    consumer.setInput(index, dequantize(quantizedValue, chosen, consumer));
    return chosen;
  }

  /**
   * Puts {@code node}'s output {@code 0} through Q and gives every consumer (and a graph output) its own DQ, so ORT
   * can fold the Q into the node's int8 kernel.
   */
  void quantizeOutput(Node node) {
    Value output = node.output(0);
    QuantizationParameters chosen = activationParameters.apply(output);
    List<Use> uses = new ArrayList<>(output.uses());
    boolean graphOutput = output.isGraphOutput();
    Value quantizedValue = quantizeAfter(output, chosen, node);
    for (Use use : uses) {
      use.node().setInput(use.inputIndex(), dequantize(quantizedValue, chosen, use.node()));
    }
    if (graphOutput) {
      Node dequantize = dequantizeNode(quantizedValue, chosen);
      editor.insertBefore(null, dequantize);
      editor.replaceKeepingInterface(output, dequantize.output(0));
      // replaceKeepingInterface moved every use; the Q must keep reading the node's own output.
      quantizedValue.producer().setInput(0, output);
    }
  }

  /** A DequantizeLinear of a per-channel int8 weight (zero points 0) along {@code axis}, inserted before {@code consumer}. */
  Value dequantizeWeight(String base, PerChannelWeights.Quantized weight, int axis, Node consumer) {
    int channels = weight.scales().length;
    Value values = editor.addInitializer(base + "_quantized", weight.values());
    Value scales = editor.addInitializer(base + "_scale", Tensor.ofFloats(new long[] {channels}, weight.scales()));
    Value zeros = editor.addInitializer(base + "_zero_point", Tensor.ofBytes(DataType.INT8, new long[] {channels},
        new byte[channels]));
    Node dequantize = editor.newNode(Onnx.DEQUANTIZE_LINEAR, base + "_DequantizeLinear", List.of(values, scales, zeros),
        base + "_dequantized", Attribute.ofInt("axis", axis));
    editor.insertBefore(consumer, dequantize);
    dequantizeNodes++;
    return dequantize.output(0);
  }

  /** A DequantizeLinear of an int32 bias with per-channel scales (input scale × weight scale, zero point 0). */
  Value dequantizeBias(String base, float[] bias, float[] scales, Node consumer) {
    int channels = scales.length;
    ByteBuffer data = ByteBuffer.allocate(channels * 4).order(ByteOrder.LITTLE_ENDIAN);
    for (int channel = 0; channel < channels; channel++) {
      double value = Math.rint((double) bias[channel] / scales[channel]);
      data.putInt((int) Math.max(Integer.MIN_VALUE, Math.min(Integer.MAX_VALUE, value)));
    }
    data.flip();
    Value values = editor.addInitializer(base + "_quantized", Tensor.ofBytes(DataType.INT32, new long[] {channels}, data));
    Value scale = editor.addInitializer(base + "_scale", Tensor.ofFloats(new long[] {channels}, scales));
    Value zeros = editor.addInitializer(base + "_zero_point", Tensor.ofInts(new long[] {channels}, new int[channels]));
    Node dequantize = editor.newNode(Onnx.DEQUANTIZE_LINEAR, base + "_DequantizeLinear", List.of(values, scale, zeros),
        base + "_dequantized", Attribute.ofInt("axis", 0));
    editor.insertBefore(consumer, dequantize);
    dequantizeNodes++;
    return dequantize.output(0);
  }

  /** Drops an initializer the quantized nodes no longer read. */
  void dropIfUnused(Value initializer) {
    if (initializer.isInitializer() && !initializer.hasUses() && !initializer.isGraphOutput() && !initializer.isGraphInput()) {
      editor.graph().removeInitializer(initializer);
    }
  }

  int quantizeNodes() {
    return quantizeNodes;
  }

  int dequantizeNodes() {
    return dequantizeNodes;
  }

  private Value quantize(Value input, QuantizationParameters chosen, Node before) {
    Node quantize = quantizeNode(input, chosen);
    editor.insertBefore(before, quantize);
    return register(input, chosen, quantize);
  }

  private Value quantizeAfter(Value output, QuantizationParameters chosen, Node after) {
    Node quantize = quantizeNode(output, chosen);
    editor.graph().insertAfter(after, quantize);
    return register(output, chosen, quantize);
  }

  private Value register(Value original, QuantizationParameters chosen, Node quantize) {
    quantizeNodes++;
    Value result = quantize.output(0);
    result.setType(chosen.type(), original.shape());
    quantized.put(original, result);
    parameters.put(result, chosen);
    return result;
  }

  private Node quantizeNode(Value input, QuantizationParameters chosen) {
    String base = input.name();
    return editor.newNode(Onnx.QUANTIZE_LINEAR, base + "_QuantizeLinear",
        List.of(input, scale(base, chosen), zeroPoint(base, chosen)), base + "_quantized");
  }

  private Value dequantize(Value quantizedValue, QuantizationParameters chosen, Node consumer) {
    Node dequantize = dequantizeNode(quantizedValue, chosen);
    editor.insertBefore(consumer, dequantize);
    return dequantize.output(0);
  }

  private Node dequantizeNode(Value quantizedValue, QuantizationParameters chosen) {
    dequantizeNodes++;
    Node quantize = quantizedValue.producer();
    Node dequantize = editor.newNode(Onnx.DEQUANTIZE_LINEAR, quantize.input(0).name() + "_DequantizeLinear",
        List.of(quantizedValue, quantize.input(1), quantize.input(2)), quantize.input(0).name() + "_dequantized");
    dequantize.output(0).setType(DataType.FLOAT, quantize.input(0).shape());
    return dequantize;
  }

  private Value scale(String base, QuantizationParameters chosen) {
    return editor.addInitializer(base + "_scale", Tensor.ofFloats(new long[0], chosen.scale()));
  }

  private Value zeroPoint(String base, QuantizationParameters chosen) {
    return editor.addInitializer(base + "_zero_point", Tensor.ofBytes(chosen.type(), new long[0],
        new byte[] {(byte) chosen.zeroPoint()}));
  }
}
