package dev.kiln.optimizer.precision;

import dev.kiln.graph.DataType;
import dev.kiln.graph.Model;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import dev.kiln.graph.infer.ShapeInference;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * The comparison the report carries: which nodes NVIDIA ModelOpt AutoCast's range rules would keep in float32 on the
 * same calibration data. As its node classifier states them: a node (other than a Constant) stays in high precision
 * when any of its inputs or outputs that the reference run recorded (node outputs and graph inputs; initializers are
 * not recorded) has max |x| above {@code data_max} — 512 in the documented command line and
 * {@code convert_to_mixed_precision} defaults — or when a float32 initializer it reads has a value above
 * {@code init_max} (65504). Nothing else is measured: one threshold for every op.
 */
final class AutoCastRule {
  private AutoCastRule() {}

  static final double DATA_MAX = 512;
  static final double INIT_MAX = 65504;

  static Map<String, PrecisionReport.KeptNode> keep(Model model, Map<String, MixedPrecision.Range> ranges,
      double dataMax) {
    ShapeInference types = ShapeInference.of(model);
    Map<String, PrecisionReport.KeptNode> kept = new LinkedHashMap<>();
    for (Node node : model.graph().nodes()) {
      if (node.is(Onnx.CONSTANT) || !Fp16Conversion.computesInFloat(node, types)) {
        continue;
      }
      PrecisionReport.KeptNode decision = null;
      for (Value input : node.inputs()) {
        if (input == null) {
          continue;
        }
        if (input.isInitializer()) {
          double peak = initializerPeak(input.initializer());
          if (peak > INIT_MAX) {
            decision = keptNode(node, "initializer", input, peak, INIT_MAX);
            break;
          }
          continue;
        }
        MixedPrecision.Range range = ranges.get(input.name());
        if (range != null && range.maxAbs > dataMax) {
          decision = keptNode(node, "input", input, range.maxAbs, dataMax);
          break;
        }
      }
      if (decision == null) {
        for (Value output : node.outputs()) {
          MixedPrecision.Range range = output == null ? null : ranges.get(output.name());
          if (range != null && range.maxAbs > dataMax) {
            decision = keptNode(node, "output", output, range.maxAbs, dataMax);
            break;
          }
        }
      }
      if (decision != null) {
        kept.put(node.name(), decision);
      }
    }
    return kept;
  }

  private static PrecisionReport.KeptNode keptNode(Node node, String role, Value value, double peak, double limit) {
    return new PrecisionReport.KeptNode(node.opType().key(), String.format(Locale.ROOT,
        "fixed threshold: %s %s reaches %.4g > %.0f", role, dev.kiln.common.Printable.quoted(value.name()), peak, limit),
        peak);
  }

  private static double initializerPeak(Tensor tensor) {
    if (tensor.dataType() != DataType.FLOAT) {
      return 0;
    }
    double peak = 0;
    for (float value : tensor.floats()) {
      peak = Math.max(peak, Math.abs(value));
    }
    return peak;
  }
}
