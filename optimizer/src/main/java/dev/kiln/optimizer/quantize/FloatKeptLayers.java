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
 * measured on the trained tiny pipeline supports (numbers in the README's int8 section). Attention score MatMuls
 * and softmax never reach this list: both operands are activations, which the quantizer leaves float.
 * A layer is recognised by structure where structure says it (the conv reading a graph input, the conv writing a
 * graph output) and by the module scope exporters keep in node names otherwise.
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
      return "first conv (conv_in): reads the latents or pixels directly; its added error was the largest of any "
          + "conv on the tiny UNet";
    }
    if (node.is(Onnx.CONV) && writesGraphOutput(node)) {
      return "last conv (conv_out): its rounding is the output's error, undamped by any later layer";
    }
    if (name.contains("shortcut")) {
      return "residual shortcut: its error adds straight onto the skip path";
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
