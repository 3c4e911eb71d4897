package dev.kiln.optimizer.precision;

import dev.kiln.graph.Model;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Value;
import dev.kiln.graph.infer.ShapeInference;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The first decisions of mixed precision, from measured ranges alone: which nodes stay float32, each with a reason
 * and the range that decided it. The rules, in the order they are tried on a node (the first that fires names it):
 *
 * <ol>
 *   <li><b>overflow</b>: a value it writes, or a non-constant value it reads, reaches 65504 / {@value #MARGIN};
 *   <li><b>accumulation</b>: a ReduceMean whose running sum (|mean| × reduced elements) would, or a value inside a
 *       fused op (its lowering's intermediate: a GroupNorm's squares, an attention's raw q·kᵀ) that would;
 *   <li><b>absolute error</b>: an op that turns an absolute error of its argument into an output error of the same
 *       size — Sin, Cos (phase), Exp (relative), Softmax (the probabilities' relative error is the logits' absolute
 *       error), also the softmax inside a fused attention — when float16's rounding of the argument, max|x| · 2⁻¹¹,
 *       exceeds {@value #ABSOLUTE_ERROR_LIMIT}; the argument's producer stays float32 as well (else the argument is
 *       stored, hence rounded, in float16 anyway);
 *   <li><b>already non-finite</b> in float32.
 * </ol>
 *
 * <p>Margins. Overflow: calibration sees a handful of inputs; diffusion activation peaks move by tens of percent
 * between prompts, latents and resolutions (the overflow fixture's peaks differ 1.35× between its two sets), so a
 * factor two covers unseen inputs of the same distribution while everything below 32752 keeps float16's speed.
 * Absolute error: 1e-2 is the default output tolerance; an op that alone puts that much error into its output cannot
 * be repaired downstream, and anything smaller is left to the verification step, which measures the sum.
 */
final class KeepRules {
  private KeepRules() {}

  static final double MARGIN = 2.0;
  static final double FP16_MAX = 65504;
  static final double LIMIT = FP16_MAX / MARGIN;
  /** Half of float16's relative spacing (2^-11): the largest relative rounding error of a stored value. */
  static final double HALF_EPSILON = 0x1p-11;
  static final double ABSOLUTE_ERROR_LIMIT = 1e-2;

  /** A value measured inside a fused node (a node of its lowering), by the lowering's op. */
  record Internal(String value, String op, String firstInput, MixedPrecision.Range range) {}

  /**
   * @param ranges measured per value name (node outputs and graph inputs)
   * @param internals per fused node name, the values of its lowering in graph order
   */
  static Map<String, PrecisionReport.KeptNode> decide(Model model, Map<String, MixedPrecision.Range> ranges,
      Map<String, List<Internal>> internals) {
    ShapeInference types = ShapeInference.of(model);
    Map<String, PrecisionReport.KeptNode> kept = new LinkedHashMap<>();
    for (Node node : model.graph().nodes()) {
      if (!Fp16Conversion.computesInFloat(node, types) || kept.containsKey(node.name())) {
        continue;
      }
      PrecisionReport.KeptNode decision = overflow(node, ranges);
      if (decision == null) {
        decision = accumulation(node, ranges, internals.getOrDefault(node.name(), List.of()));
      }
      if (decision == null) {
        decision = absoluteError(node, ranges, internals.getOrDefault(node.name(), List.of()));
        if (decision != null && !isFused(node) && node.input(0) != null && node.input(0).producer() != null) {
          Node producer = node.input(0).producer();
          if (!kept.containsKey(producer.name()) && Fp16Conversion.computesInFloat(producer, types)) {
            kept.put(producer.name(), new PrecisionReport.KeptNode(producer.opType().key(), "makes the argument of "
                + quoted(node.name()) + ": " + decision.reason(), decision.maxAbs()));
          }
        }
      }
      if (decision == null) {
        decision = nonFinite(node, ranges);
      }
      if (decision != null) {
        kept.put(node.name(), decision);
      }
    }
    return kept;
  }

  /** Rule 1: a value the node writes, or a non-constant value it reads, would overflow float16. */
  static PrecisionReport.KeptNode overflow(Node node, Map<String, MixedPrecision.Range> ranges) {
    String op = node.opType().key();
    for (Value output : node.outputs()) {
      MixedPrecision.Range range = output == null ? null : ranges.get(output.name());
      if (range != null && range.maxAbs > LIMIT) {
        return new PrecisionReport.KeptNode(op, String.format(Locale.ROOT,
            "overflow: %s output %s reaches %.4g (float16 max 65504, kept above 65504/%.0f)", op, quoted(output.name()),
            range.maxAbs, MARGIN), range.maxAbs);
      }
    }
    for (Value input : node.inputs()) {
      MixedPrecision.Range range = input == null || input.isInitializer() ? null : ranges.get(input.name());
      if (range != null && range.maxAbs > LIMIT) {
        return new PrecisionReport.KeptNode(op, String.format(Locale.ROOT,
            "overflow: reads %s reaching %.4g: stored as float16 it would overflow", quoted(input.name()), range.maxAbs),
            range.maxAbs);
      }
    }
    return null;
  }

  /** Rule 2: an accumulation inside the node (a mean's running sum, a fused op's intermediate) would overflow. */
  static PrecisionReport.KeptNode accumulation(Node node, Map<String, MixedPrecision.Range> ranges,
      List<Internal> internal) {
    String op = node.opType().key();
    if (node.is(Onnx.REDUCE_MEAN) && node.inputCount() > 0 && node.input(0) != null && node.output(0) != null) {
      MixedPrecision.Range input = ranges.get(node.input(0).name());
      MixedPrecision.Range output = ranges.get(node.output(0).name());
      if (input != null && output != null) {
        // The mean's running sum over n elements reaches |mean|·n before the division.
        long reduced = Math.max(1, input.elements / Math.max(1, output.elements));
        double sum = output.maxAbs * reduced;
        if (sum > LIMIT) {
          return new PrecisionReport.KeptNode(op, String.format(Locale.ROOT,
              "accumulation: reduction over %d elements, its running sum reaches %.4g", reduced, sum), sum);
        }
      }
    }
    for (Internal value : internal) {
      if (value.range().maxAbs > LIMIT) {
        return new PrecisionReport.KeptNode(op, String.format(Locale.ROOT,
            "accumulation inside the fused op: its %s intermediate %s reaches %.4g (float16 max 65504, kept above "
                + "65504/%.0f)", value.op(), quoted(value.value()), value.range().maxAbs, MARGIN), value.range().maxAbs);
      }
    }
    return null;
  }

  /** Rule 3: float16's rounding of the argument alone is an output error over the limit. */
  static PrecisionReport.KeptNode absoluteError(Node node, Map<String, MixedPrecision.Range> ranges,
      List<Internal> internal) {
    String op = node.opType().key();
    boolean phase = node.is(Onnx.SIN) || node.is(Onnx.COS);
    if ((phase || node.is(Onnx.EXP) || node.is(Onnx.SOFTMAX)) && node.input(0) != null) {
      MixedPrecision.Range argument = ranges.get(node.input(0).name());
      if (argument != null && argument.maxAbs * HALF_EPSILON > ABSOLUTE_ERROR_LIMIT) {
        String effect = phase ? "a phase error" : node.is(Onnx.EXP) ? "a relative error of the result"
            : "a relative error of the probabilities";
        return new PrecisionReport.KeptNode(op, String.format(Locale.ROOT, "absolute error: %s argument %s reaches "
            + "%.4g; float16's rounding there (%.3g) is %s of the same size, over %.3g", op, quoted(node.input(0).name()),
            argument.maxAbs, argument.maxAbs * HALF_EPSILON, effect, ABSOLUTE_ERROR_LIMIT), argument.maxAbs);
      }
    }
    // A fused attention's softmax reads its scores from q·kᵀ, which a float16 kernel may store as float16.
    for (Internal value : internal) {
      if (isScores(value, internal) && value.range().maxAbs * HALF_EPSILON > ABSOLUTE_ERROR_LIMIT) {
        return new PrecisionReport.KeptNode(op, String.format(Locale.ROOT, "absolute error inside the fused op: its "
            + "softmax input %s reaches %.4g; float16's rounding there (%.3g) is a relative error of the attention "
            + "probabilities of the same size, over %.3g", quoted(value.value()), value.range().maxAbs,
            value.range().maxAbs * HALF_EPSILON, ABSOLUTE_ERROR_LIMIT), value.range().maxAbs);
      }
    }
    return null;
  }

  /** Rule 4: float32 itself already overflows here; float16 cannot do better. */
  static PrecisionReport.KeptNode nonFinite(Node node, Map<String, MixedPrecision.Range> ranges) {
    for (Value output : node.outputs()) {
      MixedPrecision.Range range = output == null ? null : ranges.get(output.name());
      if (range != null && range.nonFinite > 0) {
        return new PrecisionReport.KeptNode(node.opType().key(), String.format(Locale.ROOT,
            "output %s is already non-finite in float32 (%d values)", quoted(output.name()), range.nonFinite),
            range.maxAbs);
      }
    }
    return null;
  }

  /** Whether a Softmax of the fused op's lowering reads {@code value}. */
  private static boolean isScores(Internal value, List<Internal> internal) {
    for (Internal other : internal) {
      if (other.op().equals(Onnx.SOFTMAX.key()) && value.value().equals(other.firstInput())) {
        return true;
      }
    }
    return false;
  }

  private static boolean isFused(Node node) {
    return !node.opType().isDefaultDomain();
  }

  private static String quoted(String name) {
    return dev.kiln.common.Printable.quoted(name);
  }
}
