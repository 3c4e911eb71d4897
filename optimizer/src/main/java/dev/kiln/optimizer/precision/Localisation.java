package dev.kiln.optimizer.precision;

import dev.kiln.graph.DataType;
import dev.kiln.graph.Model;
import dev.kiln.graph.ModelReader;
import dev.kiln.graph.ModelWriter;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Value;
import dev.kiln.graph.infer.ShapeInference;
import dev.kiln.validator.lowering.Lowering;
import dev.kiln.validator.parity.Fp16StorageEmulation;
import java.nio.file.Path;
import java.util.AbstractMap;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * Finds where a failing candidate's divergence is born. The candidate and the float32 graph run side by side with
 * every float value exposed — the fused graph's values and, after lowering, the values inside each fused op (a
 * GroupNorm's statistics, a packed attention's scores), so the search looks into a fused op rather than stopping at
 * its output. The first value (graph order) over the tolerance is blamed when the divergence starts there: it
 * overflowed where it is stored, or its inputs carry at most {@value #INPUT_SHARE} of the tolerance (the error is not
 * inherited). A value inside a fused op blames the fused op. A divergence inherited from many small roundings has no
 * single origin: then this returns null and the search measures modules instead.
 */
final class Localisation {
  /** The share of the tolerance an input may carry for the error to count as born at its reader. */
  static final double INPUT_SHARE = 0.1;

  private final Path reference;
  private final Map<String, Node> modelNodes;
  private final List<CalibrationSets.Set> verification;
  private final double tolerance;
  private final Path scratch;
  private final int[] sessions;
  private final Map<Integer, Map<String, float[]>> referenceValues = new HashMap<>();

  /** @param modelNodes the float32 model's nodes by name (the candidates add Casts and rename graph outputs' makers) */
  Localisation(Path reference, Map<String, Node> modelNodes, List<CalibrationSets.Set> verification, double tolerance,
      Path scratch, int[] sessions) {
    this.reference = reference;
    this.modelNodes = modelNodes;
    this.verification = verification;
    this.tolerance = tolerance;
    this.scratch = scratch;
    this.sessions = sessions;
  }

  /** The node to keep float32 next, with its reason, or null when the divergence has no single origin. */
  Map.Entry<String, PrecisionReport.KeptNode> localise(Model candidate, int failing, Map<String,
      PrecisionReport.KeptNode> kept, Map<String, MixedPrecision.Range> ranges) {
    Map<String, float[]> expected = referenceValues(failing);
    Path file = scratch.resolve("localise.onnx");
    Model exposed = MixedPrecision.writeCopy(candidate, scratch, file, copy -> exposed(copy, true));
    Map<String, float[]> actual;
    try (OrtCpu session = new OrtCpu(file)) {
      sessions[0]++;
      actual = session.run(verification.get(failing).feeds());
    }
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
        if (output == null || !expected.containsKey(output.name()) || !actual.containsKey(output.name())) {
          continue;
        }
        double error = MixedPrecision.relativeError(expected.get(output.name()), actual.get(output.name()));
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
          inherited = Math.max(inherited, inputError(input, expected, actual));
        }
        boolean overflow = !allFinite(actual.get(output.name())) && allFinite(expected.get(output.name()))
            && !(inherited > tolerance);
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
  private static double inputError(Value input, Map<String, float[]> expected, Map<String, float[]> actual) {
    Value value = input;
    while (value != null) {
      if (expected.containsKey(value.name()) && actual.containsKey(value.name())) {
        return MixedPrecision.relativeError(expected.get(value.name()), actual.get(value.name()));
      }
      Node producer = value.producer();
      if (producer == null || !producer.is(Onnx.CAST)) {
        return 0;
      }
      value = producer.input(0);
    }
    return 0;
  }

  private Map<String, float[]> referenceValues(int set) {
    Map<String, float[]> cached = referenceValues.get(set);
    if (cached != null) {
      return cached;
    }
    Path file = scratch.resolve("localise-reference.onnx");
    MixedPrecision.writeCopy(ModelReader.read(reference), scratch, file, copy -> exposed(copy, false));
    try (OrtCpu session = new OrtCpu(file)) {
      sessions[0]++;
      // Every intermediate of one set: a full-size UNet's are gigabytes, so only the set that failed is kept.
      cached = session.run(verification.get(set).feeds());
    }
    referenceValues.put(set, cached);
    return cached;
  }

  /**
   * {@code copy} (a model's disk-backed copy, rewritten in place) with every float value exposed: the fused graph's (before lowering, which keeps graph outputs'
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

  private static boolean allFinite(float[] values) {
    for (float value : values) {
      if (!Float.isFinite(value)) {
        return false;
      }
    }
    return true;
  }

  private static String quoted(String name) {
    return dev.kiln.common.Printable.quoted(name);
  }
}
