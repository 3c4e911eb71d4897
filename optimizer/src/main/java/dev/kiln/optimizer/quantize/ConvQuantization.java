package dev.kiln.optimizer.quantize;

import dev.kiln.graph.Node;
import dev.kiln.graph.Value;

/**
 * Conv(x, W, b) ⇒ DQ(Q(x)) · DQ(W_int8, per output channel) + DQ(b_int32) → Conv → Q → DQ: the group ORT's CPU
 * QDQ selector turns into QLinearConv. The selector wants every input dequantized (a float bias blocks the fusion),
 * the bias in int32 at scale x_scale · w_scale[c], and a Q as the conv's only consumer.
 */
final class ConvQuantization {
  private ConvQuantization() {}

  /** Whether {@code conv} has the constant weight (and bias) this rule needs; null when it does, else why not. */
  static String unsupported(Node conv) {
    Value weight = conv.input(1);
    if (weight == null || !weight.isInitializer()) {
      return "weight is not a constant";
    }
    if (conv.inputCount() > 2 && conv.input(2) != null && !conv.input(2).isInitializer()) {
      return "bias is not a constant";
    }
    return null;
  }

  static void full(Node conv, QdqEditor qdq) {
    Value weight = conv.input(1);
    Value bias = conv.inputCount() > 2 ? conv.input(2) : null;
    QuantizationParameters input = qdq.quantizeInput(conv, 0);
    PerChannelWeights.Quantized quantized = PerChannelWeights.quantize(weight.initializer(), 0);
    conv.setInput(1, qdq.dequantizeWeight(weight.name(), quantized, 0, conv));
    qdq.dropIfUnused(weight);
    if (bias != null) {
      float[] scales = new float[quantized.scales().length];
      for (int channel = 0; channel < scales.length; channel++) {
        scales[channel] = input.scale() * quantized.scales()[channel];
      }
      conv.setInput(2, qdq.dequantizeBias(bias.name(), bias.initializer().floats(), scales, conv));
      qdq.dropIfUnused(bias);
    }
    qdq.quantizeOutput(conv);
  }

  /** Only the weight becomes int8; ORT dequantizes it at run time and runs the float Conv. */
  static void weightsOnly(Node conv, QdqEditor qdq) {
    Value weight = conv.input(1);
    conv.setInput(1, qdq.dequantizeWeight(weight.name(), PerChannelWeights.quantize(weight.initializer(), 0), 0, conv));
    qdq.dropIfUnused(weight);
  }
}
