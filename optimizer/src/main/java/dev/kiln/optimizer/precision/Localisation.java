package dev.kiln.optimizer.precision;

import dev.kiln.graph.DataType;
import dev.kiln.graph.Model;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.SharedTensors;
import dev.kiln.graph.Value;
import dev.kiln.graph.infer.ShapeInference;
import dev.kiln.validator.lowering.Lowering;
import dev.kiln.validator.parity.Fp16StorageEmulation;
import java.util.AbstractMap;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * Finds where a failing candidate's divergence is born. The candidate and the float32 graph run side by side, in one
 * graph that compares them value by value ({@link Divergence}), over every float value — the fused graph's values
 * and, after lowering, the values inside each fused op (a GroupNorm's statistics, a packed attention's scores), so
 * the search looks into a fused op rather than stopping at its output. The first value (graph order) over the tolerance is blamed when the divergence starts there: it
 * overflowed where it is stored, or its inputs carry at most {@value #INPUT_SHARE} of the tolerance (the error is not
 * inherited). A value inside a fused op blames the fused op. A divergence inherited from many small roundings has no
 * single origin: then this returns null and the search measures modules instead.
 */
final class Localisation {
  /** The share of the tolerance an input may carry for the error to count as born at its reader. */
  static final double INPUT_SHARE = 0.1;

  private final Model reference;
  private final Map<String, Node> modelNodes;
  private final List<CalibrationSets.Set> verification;
  private final double tolerance;
  private final SessionWeights weights;
  private final int[] sessions;

  /** @param modelNodes the float32 model's nodes by name (the candidates add Casts and rename graph outputs' makers) */
  Localisation(Model reference, Map<String, Node> modelNodes, List<CalibrationSets.Set> verification, double tolerance,
      SessionWeights weights, int[] sessions) {
    this.reference = reference;
    this.modelNodes = modelNodes;
    this.verification = verification;
    this.tolerance = tolerance;
    this.weights = weights;
    this.sessions = sessions;
  }

  /** The node to keep float32 next, with its reason, or null when the divergence has no single origin. */
  Map.Entry<String, PrecisionReport.KeptNode> localise(Model candidate, int failing, Map<String,
      PrecisionReport.KeptNode> kept, Map<String, MixedPrecision.Range> ranges) {
    // The reference and the candidate run side by side in one graph that compares their values as it goes (see
    // Divergence): one session and one run, and only a few numbers per value come back.
    Model exposed = exposed(SharedTensors.copy(candidate), true);
    Map<String, Divergence.Measure> measured = Divergence.of(exposed(SharedTensors.copy(reference), false), exposed)
        .measure(weights, verification.get(failing), sessions);
    Set<String> fused = new HashSet<>();
    candidate.graph().nodes().forEach(node -> fused.add(node.name()));
    Map<String, Node> original = new HashMap<>();
    candidate.graph().nodes().forEach(node -> original.put(node.name(), node));
    String set = verification.get(failing).name();
    for (Node node : exposed.graph().nodes()) {
      if (node.name().contains("/fp16_storage/")) {
        continue;
      }
      for (Value output : node.outputs()) {
        Divergence.Measure measure = output == null ? null : measured.get(output.name());
        if (measure == null) {
          continue;
        }
        double error = measure.error();
        if (error <= tolerance) {
          continue;
        }
        // A Cast the conversion or the emulation added carries its source's value: judge the node that made it.
        Node origin = node;
        while (origin.is(Onnx.CAST) && !modelNodes.containsKey(origin.name()) && origin.input(0) != null
            && origin.input(0).producer() != null) {
          origin = origin.input(0).producer();
        }
        double inherited = 0;
        for (Value input : origin.inputs()) {
          inherited = Math.max(inherited, inputError(input, measured));
        }
        boolean overflow = !measure.actualFinite() && measure.expectedFinite() && !(inherited > tolerance);
        if (!overflow && inherited > INPUT_SHARE * tolerance) {
          return null;
        }
        String owner = MixedPrecision.owner(origin.name(), fused);
        Node blamed = original.get(owner != null ? owner : origin.name());
        if (blamed == null || !modelNodes.containsKey(blamed.name())) {
          // A Cast the conversion put at a precision boundary: not a node of the model; look further.
          continue;
        }
        String where = owner != null ? String.format(Locale.ROOT, "inside fused %s, its %s intermediate %s",
            quoted(owner), origin.opType().key(), quoted(output.name())) : "its output " + quoted(output.name());
        String reason = String.format(Locale.ROOT, "verification: %s is where the divergence starts on %s (%s, "
            + "relative error %.3g from inputs within %.3g)", where, set, overflow ? "overflow where stored as float16"
            : "born here", error, inherited);
        if (!kept.containsKey(blamed.name())) {
          return new AbstractMap.SimpleEntry<>(blamed.name(), new PrecisionReport.KeptNode(blamed.opType().key(), reason,
              MixedPrecision.rangeOf(modelNodes.get(blamed.name()), ranges)));
        }
        // Already float32 and still diverging from nearly exact inputs: the rounding of what it reads is amplified
        // (a Sin of a large argument, a normalisation of a value far from its mean); keep a producer of its inputs.
        for (Value input : blamed.inputs()) {
          Node producer = input == null || input.isInitializer() ? null : input.producer();
          while (producer != null && producer.is(Onnx.CAST) && !modelNodes.containsKey(producer.name())) {
            producer = producer.input(0).producer();
          }
          if (producer != null && !kept.containsKey(producer.name()) && !producer.is(Onnx.CONSTANT)
              && modelNodes.containsKey(producer.name())) {
            return new AbstractMap.SimpleEntry<>(producer.name(), new PrecisionReport.KeptNode(producer.opType().key(),
                "verification: makes an input of float32 " + quoted(blamed.name()) + ", which still diverges ("
                    + reason.substring("verification: ".length()) + ")",
                MixedPrecision.rangeOf(modelNodes.get(producer.name()), ranges)));
          }
        }
        return null;
      }
    }
    return null;
  }

  /** The error a node's input carries, through the Casts of conversion and emulation; 0 for constants and inputs. */
  private static double inputError(Value input, Map<String, Divergence.Measure> measured) {
    Value value = input;
    while (value != null) {
      if (measured.containsKey(value.name())) {
        return measured.get(value.name()).error();
      }
      Node producer = value.producer();
      if (producer == null || !producer.is(Onnx.CAST)) {
        return 0;
      }
      value = producer.input(0);
    }
    return 0;
  }

  /**
   * {@code copy} (an in-memory copy, rewritten in place) with every float value exposed: the fused graph's (before lowering, which keeps graph outputs'
   * names), then the lowering's own; then, for a candidate, fp16 storage emulated, so an exposed float16 value is
   * read after its rounding.
   */
  private static Model exposed(Model copy, boolean emulate) {
    Set<String> fusedNodes = new HashSet<>();
    copy.graph().nodes().forEach(node -> fusedNodes.add(node.name()));
    MixedPrecision.expose(copy, null);
    Lowering.forOrtCpu().lower(copy);
    ShapeInference types = ShapeInference.of(copy);
    Set<String> internal = new HashSet<>();
    for (Node node : copy.graph().nodes()) {
      if (MixedPrecision.owner(node.name(), fusedNodes) == null) {
        continue;
      }
      for (Value output : node.outputs()) {
        DataType type = output == null ? null : types.dataType(output);
        if (type == DataType.FLOAT || type == DataType.FLOAT16) {
          internal.add(output.name());
        }
      }
    }
    MixedPrecision.expose(copy, internal);
    if (emulate) {
      Fp16StorageEmulation.apply(copy);
    }
    return copy;
  }

  private static String quoted(String name) {
    return dev.kiln.common.Printable.quoted(name);
  }
}
