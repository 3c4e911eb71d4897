package dev.kiln.optimizer.precision;

import dev.kiln.common.KilnException;
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
import dev.kiln.validator.parity.Metrics;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;

/**
 * Automatic mixed precision from measured ranges: calibrate the float32 graph on ORT's CPU provider with every float
 * intermediate exposed, keep float32 the nodes whose values would leave float16's range, then verify the candidate
 * under fp16-storage emulation (the validator's harness: every tensor stored as float16 is rounded through an
 * explicit Cast pair) against float32, localise the first diverging tensor, keep its producer float32, and repeat.
 *
 * <p>Margin: a node is kept when a value it reads or writes reaches {@code 65504 / }{@value #MARGIN}. Calibration
 * sees a handful of inputs; activation peaks of diffusion models move by tens of percent between prompts, latents
 * and resolutions (the overflow fixture's peaks differ by 1.35× between its two test sets), so a factor two covers
 * unseen inputs of the same distribution while everything below 32752 still gets float16's speed — far less
 * conservative than a fixed 512 threshold for every op.
 */
public final class MixedPrecision {
  private MixedPrecision() {}

  public static final double MARGIN = 2.0;
  static final double FP16_MAX = 65504;
  /** Half of float16's relative spacing (2^-11): the largest relative rounding error of a stored value. */
  private static final double HALF_EPSILON = 0x1p-11;
  private static final double PHASE_TOLERANCE = 1e-2;
  /** Refinement rounds at most, and rounds without a better worst output before the search gives up. */
  private static final int MAX_REFINEMENTS = 12;
  private static final int PATIENCE = 3;

  /** Per-tensor calibration statistics. */
  static final class Range {
    double maxAbs;
    double minNonZero = Double.POSITIVE_INFINITY;
    long nonFinite;
    long elements;

    void add(float[] values) {
      elements = Math.max(elements, values.length);
      for (float value : values) {
        if (!Float.isFinite(value)) {
          nonFinite++;
          continue;
        }
        double magnitude = Math.abs(value);
        maxAbs = Math.max(maxAbs, magnitude);
        if (magnitude > 0) {
          minNonZero = Math.min(minNonZero, magnitude);
        }
      }
    }
  }

  /**
   * Decides, verifies and converts {@code model} (float32, fused) in place.
   *
   * @param sets calibration inputs (at least one; two resolutions recommended)
   */
  public static PrecisionReport convert(Model model, List<CalibrationSets.Set> sets, Fp16Conversion.Options options,
      double tolerance) {
    if (sets.isEmpty()) {
      throw new KilnException.BadInput("--precision mixed needs calibration inputs (--calibration DIR in the ONNX "
          + "test-data layout, or test_data_set_N folders next to the model)");
    }
    List<CalibrationSets.Set> calibration = new ArrayList<>();
    List<CalibrationSets.Set> heldOut = new ArrayList<>();
    if (sets.size() >= 4) {
      for (int i = 0; i < sets.size(); i++) {
        (i % 2 == 0 ? calibration : heldOut).add(sets.get(i));
      }
    } else {
      // Too few sets to split: verify on the mirror images of the calibration inputs (same distribution, other values).
      calibration.addAll(sets);
      for (CalibrationSets.Set set : sets) {
        heldOut.add(mirrored(set));
      }
    }
    return convert(model, calibration, heldOut, options, tolerance);
  }

  /**
   * As {@link #convert(Model, List, Fp16Conversion.Options, double)} with the split given: ranges are measured on
   * {@code calibration}, parity is verified on {@code heldOut} (e.g. {@link PipelineCalibration}'s held-out prompts).
   */
  public static PrecisionReport convert(Model model, List<CalibrationSets.Set> calibration,
      List<CalibrationSets.Set> heldOut, Fp16Conversion.Options options, double tolerance) {
    if (calibration.isEmpty() || heldOut.isEmpty()) {
      throw new KilnException.BadInput("--precision mixed needs calibration inputs to measure on and held-out inputs to "
          + "verify on (got " + calibration.size() + " and " + heldOut.size() + ")");
    }
    Path scratch;
    try {
      scratch = Files.createTempDirectory("kiln-precision-");
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    try {
      return search(model, calibration, heldOut, options, tolerance, scratch);
    } finally {
      deleteTree(scratch);
    }
  }

  private static PrecisionReport search(Model model, List<CalibrationSets.Set> calibration,
      List<CalibrationSets.Set> heldOut, Fp16Conversion.Options options, double tolerance, Path scratch) {
    int[] sessions = {0};
    Path reference = scratch.resolve("reference.onnx");
    ModelWriter.write(model, reference);
    List<String> floatValues = floatValueNames(model);
    Path calibrating = scratch.resolve("calibrate.onnx");
    Model calibrationGraph = ModelReader.read(reference);
    expose(calibrationGraph, Set.copyOf(floatValues));
    Lowering.forOrtCpu().lower(calibrationGraph);
    ModelWriter.write(calibrationGraph, calibrating);
    Map<String, Range> ranges = new HashMap<>();
    List<Map<String, float[]>> referenceOutputs = new ArrayList<>();
    List<String> outputNames = model.graph().outputs().stream().map(Value::name).toList();
    try (OrtCpu session = new OrtCpu(calibrating)) {
      sessions[0]++;
      for (CalibrationSets.Set set : calibration) {
        session.run(set.feeds()).forEach((name, values) -> ranges.computeIfAbsent(name, key -> new Range()).add(values));
      }
      for (CalibrationSets.Set set : heldOut) {
        Map<String, float[]> all = session.run(set.feeds());
        Map<String, float[]> outputs = new LinkedHashMap<>();
        outputNames.forEach(name -> outputs.put(name, all.get(name)));
        referenceOutputs.add(outputs);
      }
    }
    Map<String, PrecisionReport.KeptNode> kept = decide(model, ranges);
    int threshold512 = countOver(model, ranges, 512);
    Map<String, Double> parity = Map.of();
    double best = Double.POSITIVE_INFINITY;
    int stale = 0;
    String lastBlame = null;
    for (int round = 0; round <= MAX_REFINEMENTS; round++) {
      Model candidate = ModelReader.read(reference);
      Fp16Conversion.convert(candidate, byNode(candidate, kept), options);
      Set<String> stored = halfValueNames(candidate);
      Path emulated = scratch.resolve("emulated.onnx");
      Model emulation = emulate(candidate, Set.of());
      ModelWriter.write(emulation, emulated);
      List<Map<String, float[]>> candidateOutputs = new ArrayList<>();
      try (OrtCpu session = new OrtCpu(emulated)) {
        sessions[0]++;
        for (CalibrationSets.Set set : heldOut) {
          candidateOutputs.add(session.run(set.feeds()));
        }
      }
      parity = new LinkedHashMap<>();
      int failing = -1;
      for (int index = 0; index < heldOut.size(); index++) {
        for (String name : outputNames) {
          double error = relativeError(referenceOutputs.get(index).get(name), candidateOutputs.get(index).get(name));
          parity.merge(name, error, Math::max);
          if (!(error <= tolerance) && failing < 0) {
            failing = index;
          }
        }
      }
      double worst = parity.values().stream().mapToDouble(Double::doubleValue).max().orElse(0);
      stale = worst < best ? 0 : stale + 1;
      best = Math.min(best, worst);
      if (failing < 0 || round == MAX_REFINEMENTS || stale >= PATIENCE) {
        break;
      }
      // Localise: the first tensor in graph order that diverges (or overflows where it is stored as float16).
      Map<String, float[]> referenceAll;
      try (OrtCpu session = new OrtCpu(calibrating)) {
        sessions[0]++;
        referenceAll = session.run(heldOut.get(failing).feeds());
      }
      Path exposed = scratch.resolve("localise.onnx");
      ModelWriter.write(emulate(candidate, Set.copyOf(floatValues)), exposed);
      Map<String, float[]> candidateAll;
      try (OrtCpu session = new OrtCpu(exposed)) {
        sessions[0]++;
        candidateAll = session.run(heldOut.get(failing).feeds());
      }
      String blamed = null;
      for (String name : floatValues) {
        float[] expected = referenceAll.get(name);
        float[] actual = candidateAll.get(name);
        Node producer = model.graph().findValue(name) == null ? null : model.graph().findValue(name).producer();
        if (expected == null || actual == null || producer == null) {
          continue;
        }
        double peak = maxAbs(actual);
        double error = relativeError(expected, actual);
        if (kept.containsKey(producer.name())) {
          if (!(error <= tolerance)) {
            // Already float32 and still diverging: the rounding of what it reads matters; keep those producers too.
            for (Value input : producer.inputs()) {
              Node feeder = input == null || input.isInitializer() ? null : input.producer();
              if (feeder != null && !kept.containsKey(feeder.name()) && floatValues.contains(input.name())) {
                blamed = feeder.name();
                kept.put(blamed, new PrecisionReport.KeptNode(feeder.opType().key(), String.format(Locale.ROOT,
                    "verification: feeds float32 %s whose output %s still diverges (relative error %.3g)",
                    quoted(producer.name()), quoted(name), error), null));
              }
            }
            if (blamed != null) {
              break;
            }
          }
          continue;
        }
        if (stored.contains(name) && peak > FP16_MAX) {
          blamed = producer.name();
          kept.put(blamed, new PrecisionReport.KeptNode(producer.opType().key(), String.format(Locale.ROOT,
              "verification: stored as float16 its output %s reaches %.4g on held-out %s", quoted(name), peak,
              heldOut.get(failing).name()), peak));
          break;
        }
        if (!(error <= tolerance)) {
          blamed = producer.name();
          kept.put(blamed, new PrecisionReport.KeptNode(producer.opType().key(), String.format(Locale.ROOT,
              "verification: first diverging tensor %s, relative error %.3g on held-out %s", quoted(name), error,
              heldOut.get(failing).name()), peak));
          break;
        }
      }
      if (blamed == null) {
        break;
      }
      lastBlame = blamed;
    }
    PrecisionReport report = Fp16Conversion.convert(model, byNode(model, kept), options);
    if (parity.values().stream().anyMatch(error -> !(error <= tolerance))) {
      List<String> notes = new ArrayList<>(report.notes());
      notes.add(String.format(Locale.ROOT, "parity over --fp16-tolerance %.3g after %d sessions; to blame: %s", tolerance,
          sessions[0], lastBlame == null ? "no single tensor (rounding accumulated over the graph)"
              : "node " + quoted(lastBlame) + " (" + kept.get(lastBlame).reason() + ")"));
      report = report.withNotes(notes);
    }
    return report.withSearch("mixed", orderedKept(report, kept), parity, sessions[0], threshold512);
  }

  /** The first decisions, from the measured ranges, with a reason each. */
  static Map<String, PrecisionReport.KeptNode> decide(Model model, Map<String, Range> ranges) {
    ShapeInference types = ShapeInference.of(model);
    double limit = FP16_MAX / MARGIN;
    Map<String, PrecisionReport.KeptNode> kept = new LinkedHashMap<>();
    for (Node node : model.graph().nodes()) {
      if (!Fp16Conversion.computesInFloat(node, types)) {
        continue;
      }
      String op = node.opType().key();
      for (Value output : node.outputs()) {
        Range range = output == null ? null : ranges.get(output.name());
        if (range == null) {
          continue;
        }
        if (range.maxAbs > limit) {
          kept.put(node.name(), new PrecisionReport.KeptNode(op, String.format(Locale.ROOT,
              "%s output %s reaches %.4g (float16 max 65504, kept above 65504/%.0f)", op, quoted(output.name()),
              range.maxAbs, MARGIN), range.maxAbs));
        } else if (node.is(Onnx.REDUCE_MEAN) && node.inputCount() > 0 && ranges.containsKey(node.input(0).name())) {
          // The mean's running sum over n elements reaches |mean|·n before the division.
          long reduced = Math.max(1, ranges.get(node.input(0).name()).elements / Math.max(1, range.elements));
          double sum = range.maxAbs * reduced;
          if (sum > limit) {
            kept.put(node.name(), new PrecisionReport.KeptNode(op, String.format(Locale.ROOT,
                "reduction over %d elements: its sum reaches %.4g", reduced, sum), sum));
          }
        }
        if (range.nonFinite > 0 && !kept.containsKey(node.name())) {
          kept.put(node.name(), new PrecisionReport.KeptNode(op, String.format(Locale.ROOT,
              "output %s is already non-finite in float32 (%d values)", quoted(output.name()), range.nonFinite), range.maxAbs));
        }
      }
      if (kept.containsKey(node.name())) {
        continue;
      }
      if ((node.is(Onnx.SIN) || node.is(Onnx.COS) || node.is(Onnx.EXP)) && node.input(0) != null) {
        // sin, cos and exp turn an absolute input error into an output error of the same size (relative, for
        // exp): float16's spacing at |x| is |x|·2^-11, over the 1e-2 tolerance from |x| ≈ 20 (a timestep embedding's
        // arguments reach 1000). The node and the producer of its argument stay float32.
        Range argument = ranges.get(node.input(0).name());
        if (argument != null && argument.maxAbs * HALF_EPSILON > PHASE_TOLERANCE) {
          String reason = String.format(Locale.ROOT, "%s argument %s reaches %.4g: float16's spacing there (%.3g) is "
              + "an output error of the same size", op, quoted(node.input(0).name()), argument.maxAbs,
              argument.maxAbs * HALF_EPSILON);
          kept.put(node.name(), new PrecisionReport.KeptNode(op, reason, argument.maxAbs));
          Node producer = node.input(0).producer();
          if (producer != null && !kept.containsKey(producer.name())) {
            kept.put(producer.name(), new PrecisionReport.KeptNode(producer.opType().key(), "makes the argument of "
                + quoted(node.name()) + ": " + reason, argument.maxAbs));
          }
          continue;
        }
      }
      for (Value input : node.inputs()) {
        Range range = input == null || input.isInitializer() ? null : ranges.get(input.name());
        if (range != null && range.maxAbs > limit) {
          kept.put(node.name(), new PrecisionReport.KeptNode(op, String.format(Locale.ROOT,
              "reads %s reaching %.4g: stored as float16 it would overflow", quoted(input.name()), range.maxAbs), range.maxAbs));
          break;
        }
      }
    }
    return kept;
  }

  /**
   * How many float nodes a fixed threshold would keep (ModelOpt AutoCast's 512), by the same rule as ours: a value
   * the node reads or writes exceeds it.
   */
  static int countOver(Model model, Map<String, Range> ranges, double threshold) {
    ShapeInference types = ShapeInference.of(model);
    int count = 0;
    for (Node node : model.graph().nodes()) {
      if (!Fp16Conversion.computesInFloat(node, types)) {
        continue;
      }
      List<Value> values = new ArrayList<>(node.outputs());
      node.inputs().stream().filter(input -> input != null && !input.isInitializer()).forEach(values::add);
      for (Value value : values) {
        Range range = value == null ? null : ranges.get(value.name());
        if (range != null && range.maxAbs > threshold) {
          count++;
          break;
        }
      }
    }
    return count;
  }

  private static Map<String, PrecisionReport.KeptNode> orderedKept(PrecisionReport report,
      Map<String, PrecisionReport.KeptNode> measured) {
    Map<String, PrecisionReport.KeptNode> all = new LinkedHashMap<>(report.float32());
    measured.forEach(all::put);
    return all;
  }

  private static Map<Node, String> byNode(Model model, Map<String, PrecisionReport.KeptNode> kept) {
    Map<Node, String> nodes = new java.util.IdentityHashMap<>();
    kept.forEach((name, decision) -> {
      Node node = model.graph().findNode(name);
      if (node != null) {
        nodes.put(node, decision.reason());
      }
    });
    return nodes;
  }

  /**
   * The CPU-runnable proof graph of a candidate: the named values exposed as outputs (before lowering, which keeps
   * graph outputs' names), contrib ops lowered to their specification, then fp16 storage emulated — an exposed
   * float16 value is read after its rounding, so an overflow shows as Inf where it happens.
   */
  private static Model emulate(Model candidate, Set<String> exposed) {
    Model copy = copy(candidate);
    expose(copy, exposed);
    Lowering.forOrtCpu().lower(copy);
    Fp16StorageEmulation.apply(copy);
    return copy;
  }

  private static Model copy(Model model) {
    try {
      Path folder = Files.createTempDirectory("kiln-precision-copy-");
      try {
        Path file = folder.resolve("model.onnx");
        ModelWriter.write(model, file, dev.kiln.graph.WriteOptions.allInline());
        return ModelReader.read(file);
      } finally {
        deleteTree(folder);
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Names of the float values nodes make, in graph order. */
  private static List<String> floatValueNames(Model model) {
    ShapeInference types = ShapeInference.of(model);
    List<String> names = new ArrayList<>();
    for (Node node : model.graph().nodes()) {
      for (Value output : node.outputs()) {
        if (output != null && types.dataType(output) == DataType.FLOAT) {
          names.add(output.name());
        }
      }
    }
    return names;
  }

  private static Set<String> halfValueNames(Model model) {
    ShapeInference types = ShapeInference.of(model);
    Set<String> names = new HashSet<>();
    for (Node node : model.graph().nodes()) {
      for (Value output : node.outputs()) {
        if (output != null && types.dataType(output) == DataType.FLOAT16) {
          names.add(output.name());
        }
      }
    }
    return names;
  }

  /** Adds the named float values as graph outputs (kept at their names through lowering and emulation). */
  public static void expose(Model model, Set<String> names) {
    ShapeInference types = ShapeInference.of(model);
    List<Value> extra = new ArrayList<>();
    for (Node node : model.graph().nodes()) {
      for (Value output : node.outputs()) {
        if (output != null && names.contains(output.name()) && !output.isGraphOutput()) {
          DataType type = types.dataType(output);
          if (type == DataType.FLOAT || type == DataType.FLOAT16) {
            output.setType(type, null);
            extra.add(output);
          }
        }
      }
    }
    extra.forEach(model.graph()::addOutput);
  }

  private static CalibrationSets.Set mirrored(CalibrationSets.Set set) {
    Map<String, CalibrationSets.Feed> feeds = new LinkedHashMap<>();
    set.feeds().forEach((name, feed) -> {
      if (feed.values() instanceof float[] values && feed.shape().length >= 3) {
        int width = Math.toIntExact(feed.shape()[feed.shape().length - 1]);
        float[] flipped = new float[values.length];
        for (int row = 0; row < values.length / width; row++) {
          for (int column = 0; column < width; column++) {
            flipped[row * width + column] = values[row * width + width - 1 - column];
          }
        }
        feeds.put(name, new CalibrationSets.Feed(feed.shape(), flipped));
      } else {
        feeds.put(name, feed);
      }
    });
    return new CalibrationSets.Set(set.name() + " mirrored", feeds);
  }

  /** max|a − b| / max|a|; NaN or Inf anywhere in b where a is finite gives infinity. */
  static double relativeError(float[] expected, float[] actual) {
    return Metrics.scaleRelativeError(expected, actual);
  }

  private static double maxAbs(float[] values) {
    double peak = 0;
    for (float value : values) {
      peak = Math.max(peak, Float.isNaN(value) ? Double.POSITIVE_INFINITY : Math.abs(value));
    }
    return peak;
  }

  private static String quoted(String name) {
    return dev.kiln.common.Printable.quoted(name);
  }

  private static void deleteTree(Path folder) {
    try (Stream<Path> paths = Files.walk(folder)) {
      for (Path path : (Iterable<Path>) paths.sorted(Comparator.reverseOrder())::iterator) {
        Files.deleteIfExists(path);
      }
    } catch (IOException e) {
      // Scratch space in the temp folder: a leftover is harmless.
    }
  }
}
