package dev.kiln.optimizer.quantize;

import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Value;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The layers that stay float by default, each with its reason. The list starts from NVIDIA's SDXL int8 recipe
 * (time embedding, conv_in/conv_out, residual shortcuts, norm_out) and is cut to what the per-layer added error
 * measured on the trained tiny pipeline supports (hybrid, MinMax; numbers in the README's int8 section): alone,
 * conv_out adds 0.214 of the UNet output's scale and conv_in 0.061, 30× and 8× the median conv (0.0072). The five
 * residual shortcuts add 0.0043–0.023 each, like ordinary convs (0.0038–0.028), but together they take the hybrid
 * UNet's held-out parity from 0.050 to 0.064 for 1×1 convs that cost little time, so they stay float. norm_out
 * (GroupNorm) and the time embedding's Gemms are never candidates. Attention score MatMuls and softmax never reach
 * this list either: both operands are activations, which the quantizer leaves float.
 * A layer is recognised by structure where structure says it (the conv reading a graph input, the conv writing a
 * graph output) and by the module scope exporters keep in node names otherwise (a VAE encoder's conv_out feeds
 * quant_conv: alone it adds 0.32 of the latent parameters' scale, whose mean and log-variance channels share one
 * per-tensor activation range).
 */
final class FloatKeptLayers {
  private FloatKeptLayers() {}

  /** The candidates (in graph order) that stay float, with the reason each. */
  static Map<Node, String> decide(List<Node> candidates) {
    Map<Node, String> kept = new LinkedHashMap<>();
    for (Node node : candidates) {
      String reason = reason(node);
      if (reason != null) {
        kept.put(node, reason);
      }
    }
    return kept;
  }

  static String reason(Node node) {
    String name = node.name() == null ? "" : node.name();
    if (name.contains("time_embedding") || name.contains("time_emb_proj") || name.contains("add_embedding")) {
      return "time embedding: its sinusoidal input spans the whole timestep range, and every resnet block reads it";
    }
    if (node.is(Onnx.CONV) && readsGraphInput(node)) {
      return "first conv (conv_in): reads the latents or pixels directly; alone it adds 0.061 of the tiny UNet's "
          + "output scale, 8x the median conv";
    }
    if (node.is(Onnx.CONV) && (writesGraphOutput(node) || name.contains("/conv_out/"))) {
      return "last conv (conv_out): its rounding is the output's error, undamped by any later layer; alone it adds "
          + "0.214 of the tiny UNet's output scale, 30x the median conv";
    }
    if (name.contains("shortcut")) {
      return "residual shortcut: adds its error straight onto the skip path; kept, the tiny UNet's parity is 0.050 "
          + "instead of 0.064, for 1x1 convs that cost little time";
    }
    return null;
  }

  private static boolean readsGraphInput(Node node) {
    Value input = node.input(0);
    return input != null && input.isGraphInput() && !input.isInitializer();
  }

  private static boolean writesGraphOutput(Node node) {
    return node.outputCount() > 0 && node.output(0) != null && node.output(0).isGraphOutput();
  }
}
