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

  public static final double MARGIN = KeepRules.MARGIN;
  static final double FP16_MAX = KeepRules.FP16_MAX;
  /** Refinement rounds (verification sessions after the first) at most. */
  private static final int MAX_REFINEMENTS = 12;
  /**
   * Exposed tensors fetched per calibration run. All at once, the fused full-size SD 1.5 UNet's ~2,000 float
   * intermediates would all be alive together in ORT and again as Java arrays; 256 per run bounds that to a few
   * hundred MB at 32×32 latents, for one graph run per chunk.
   */
  static final int CALIBRATION_CHUNK = 256;
  /**
   * Modules measured one by one at most, one session each: above it the first scope level is used (a UNet's
   * down/mid/up blocks: about a dozen sessions), at or below it the second (its resnets and attentions).
   */
  private static final int MAX_GROUPS = 16;
  /** Graph-order run length that stands for a module when node names carry no scope. */
  private static final int UNSCOPED_RUN = 32;
  /** The share of the tolerance the module prediction aims at. */
  static final double TARGET_SHARE = 0.8;

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
    List<CalibrationSets.Set> verification = new ArrayList<>();
    if (sets.size() >= 4) {
      for (int i = 0; i < sets.size(); i++) {
        (i % 2 == 0 ? calibration : verification).add(sets.get(i));
      }
    } else {
      // Too few sets to split: verify on the calibration inputs themselves and on their mirror images (same
      // distribution, other values); the first decisions come from ranges only, so seen inputs still test them.
      calibration.addAll(sets);
      verification.addAll(sets);
      for (CalibrationSets.Set set : sets) {
        verification.add(mirrored(set));
      }
    }
    return convert(model, calibration, verification, options, tolerance);
  }

  /** What calibration measured: ranges per value, fused nodes' internal values, float32 outputs per verification set. */
  private record Calibration(Map<String, Range> ranges, Map<String, List<KeepRules.Internal>> internals,
      List<Map<String, float[]>> referenceOutputs) {}

  /** The outcome of running a candidate under emulation on the verification sets. */
  private record Verification(Map<String, Double> parity, int failing) {
    double worst() {
      return parity.values().stream().mapToDouble(Double::doubleValue).max().orElse(0);
    }
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
      List<CalibrationSets.Set> verification, Fp16Conversion.Options options, double tolerance, Path scratch) {
    int[] sessions = {0};
    Path reference = scratch.resolve("reference.onnx");
    ModelWriter.write(model, reference);
    List<String> outputNames = model.graph().outputs().stream().map(Value::name).toList();
    Calibration measured = calibrate(model, reference, calibration, verification, outputNames, scratch, sessions);
    Map<String, Range> ranges = measured.ranges();
    Map<String, PrecisionReport.KeptNode> kept = KeepRules.decide(model, ranges, measured.internals());
    Map<String, PrecisionReport.KeptNode> fixedThreshold = AutoCastRule.keep(model, ranges, AutoCastRule.DATA_MAX);
    Map<String, Node> modelNodes = new HashMap<>();
    model.graph().nodes().forEach(node -> modelNodes.putIfAbsent(node.name(), node));
    Localisation localisation = new Localisation(reference, modelNodes, verification, tolerance, scratch, sessions);
    boolean localising = true;
    double beforeLocal = Double.POSITIVE_INFINITY;
    int unimproved = 0;
    Verification verified = null;
    String lastBlame = null;
    List<Group> groups = null;
    Verification beforeGroups = null;
    for (int round = 0; round <= MAX_REFINEMENTS; round++) {
      Model candidate = candidate(reference, kept, options);
      verified = verify(candidate, verification, measured.referenceOutputs(), outputNames, tolerance, scratch, sessions);
      if (verified.failing() < 0 || round == MAX_REFINEMENTS) {
        break;
      }
      // A divergence with one origin (an overflow where a value is stored, or an error that appears at one node,
      // also inside a fused op) is repaired there; an error accumulated over many roundings is spread by module.
      // Local repairs that twice in a row do not lower the worst output (the second may keep the producer of what
      // a float32 node reads) mean the error is not local: stop localising.
      unimproved = verified.worst() < beforeLocal ? 0 : unimproved + 1;
      localising &= unimproved < 2;
      Map.Entry<String, PrecisionReport.KeptNode> blame = localising
          ? localisation.localise(candidate, verified.failing(), kept, ranges) : null;
      if (blame != null) {
        beforeLocal = verified.worst();
        kept.put(blame.getKey(), blame.getValue());
        lastBlame = blame.getKey();
        continue;
      }
      localising = false;
      if (groups == null) {
        groups = contributions(reference, kept, options, verification, measured.referenceOutputs(), outputNames,
            scratch, sessions);
        beforeGroups = verified;
      }
      String chosen = keepGroups(groups, kept, ranges, verified, beforeGroups, tolerance);
      if (chosen == null) {
        break;
      }
      lastBlame = chosen;
    }
    Map<String, Double> parity = verified.parity();
    // The comparison: the same conversion with the fixed threshold's float32 set, verified the same way (one
    // session, not counted in the search's).
    Model thresholdCandidate = candidate(reference, fixedThreshold, options);
    Map<String, Double> thresholdParity = verify(thresholdCandidate, verification, measured.referenceOutputs(),
        outputNames, tolerance, scratch, new int[1]).parity();
    PrecisionReport report = Fp16Conversion.convert(model, byNode(model, kept), options);
    if (parity.values().stream().anyMatch(error -> !(error <= tolerance))) {
      List<String> notes = new ArrayList<>(report.notes());
      notes.add(String.format(Locale.ROOT, "parity over --fp16-tolerance %.3g after %d sessions; to blame: %s", tolerance,
          sessions[0], lastBlame == null ? "no single tensor (rounding accumulated over the graph)"
              : quoted(lastBlame) + " (" + (kept.containsKey(lastBlame) ? kept.get(lastBlame).reason() : "module") + ")"));
      report = report.withNotes(notes);
    }
    return report.withSearch("mixed", orderedKept(report, kept), parity, sessions[0], fixedThreshold.size())
        .withThreshold(thresholdParity);
  }

  /**
   * Runs the float32 graph with every float value exposed — the fused graph's values, and, after lowering (attention
   * decomposed to MatMul/Softmax so that its scores are seen), the values inside each fused op — over the calibration
   * sets (ranges) and the verification sets (reference outputs).
   */
  private static Calibration calibrate(Model model, Path reference, List<CalibrationSets.Set> calibration,
      List<CalibrationSets.Set> verification, List<String> outputNames, Path scratch, int[] sessions) {
    Path calibrating = scratch.resolve("calibrate.onnx");
    Model graph = ModelReader.read(reference);
    expose(graph, Set.copyOf(floatValueNames(graph)));
    Set<String> fusedNodes = new HashSet<>();
    graph.graph().nodes().forEach(node -> fusedNodes.add(node.name()));
    try {
      Lowering.decomposingAttention().lower(graph);
    } catch (KilnException.Unsupported e) {
      // An attention form the decomposition refuses: calibrate without its internals.
      graph = ModelReader.read(reference);
      expose(graph, Set.copyOf(floatValueNames(graph)));
      Lowering.forOrtCpu().lower(graph);
    }
    Map<String, List<KeepRules.Internal>> internals = new LinkedHashMap<>();
    ShapeInference types = ShapeInference.of(graph);
    Set<String> internalValues = new HashSet<>();
    Map<String, KeepRules.Internal> byValue = new LinkedHashMap<>();
    Map<String, String> ownerOf = new LinkedHashMap<>();
    for (Node node : graph.graph().nodes()) {
      String owner = owner(node.name(), fusedNodes);
      if (owner == null) {
        continue;
      }
      for (Value output : node.outputs()) {
        if (output != null && types.dataType(output) == DataType.FLOAT && !output.isGraphOutput()) {
          internalValues.add(output.name());
          String firstInput = node.inputCount() > 0 && node.input(0) != null ? node.input(0).name() : "";
          byValue.put(output.name(), new KeepRules.Internal(output.name(), node.opType().key(), firstInput, null));
          ownerOf.put(output.name(), owner);
        }
      }
    }
    expose(graph, internalValues);
    ModelWriter.write(graph, calibrating);
    Map<String, Range> ranges = new HashMap<>();
    List<Map<String, float[]>> referenceOutputs = new ArrayList<>();
    try (OrtCpu session = new OrtCpu(calibrating)) {
      sessions[0]++;
      // Each exposed tensor is reduced to its range as it arrives, a chunk of them per run: a full-size UNet exposes
      // thousands, which together would not fit in memory (see CALIBRATION_CHUNK).
      for (CalibrationSets.Set set : calibration) {
        set.feeds().forEach((name, feed) -> {
          if (feed.values() instanceof float[] values) {
            ranges.computeIfAbsent(name, key -> new Range()).add(values);
          }
        });
        session.runEach(set.feeds(), CALIBRATION_CHUNK,
            (name, values) -> ranges.computeIfAbsent(name, key -> new Range()).add(values));
      }
      for (CalibrationSets.Set set : verification) {
        Map<String, float[]> all = session.run(set.feeds(), new java.util.LinkedHashSet<>(outputNames));
        Map<String, float[]> outputs = new LinkedHashMap<>();
        outputNames.forEach(name -> outputs.put(name, all.get(name)));
        referenceOutputs.add(outputs);
      }
    }
    byValue.forEach((name, value) -> {
      Range range = ranges.get(name);
      if (range != null) {
        internals.computeIfAbsent(ownerOf.get(name), key -> new ArrayList<>())
            .add(new KeepRules.Internal(value.value(), value.op(), value.firstInput(), range));
      }
    });
    return new Calibration(ranges, internals, referenceOutputs);
  }

  /**
   * The fused node a lowering node stands for: lowerings name their nodes under the replaced node's name
   * ({@code /mid_block/attn/MultiHeadAttention/Softmax}); null for a node of the graph itself.
   */
  static String owner(String name, Set<String> fusedNodes) {
    if (fusedNodes.contains(name)) {
      return null;
    }
    for (int cut = name.lastIndexOf('/'); cut > 0; cut = name.lastIndexOf('/', cut - 1)) {
      String prefix = name.substring(0, cut);
      if (fusedNodes.contains(prefix)) {
        return prefix;
      }
    }
    return null;
  }

  private static Model candidate(Path reference, Map<String, PrecisionReport.KeptNode> kept,
      Fp16Conversion.Options options) {
    Model candidate = ModelReader.read(reference);
    Fp16Conversion.convert(candidate, byNode(candidate, kept), options);
    return candidate;
  }

  private static Verification verify(Model candidate, List<CalibrationSets.Set> verification,
      List<Map<String, float[]>> referenceOutputs, List<String> outputNames, double tolerance, Path scratch,
      int[] sessions) {
    Path emulated = scratch.resolve("emulated.onnx");
    emulate(candidate, Set.of(), emulated, scratch);
    Map<String, Double> parity = new LinkedHashMap<>();
    int failing = -1;
    try (OrtCpu session = new OrtCpu(emulated)) {
      sessions[0]++;
      for (int index = 0; index < verification.size(); index++) {
        Map<String, float[]> outputs = session.run(verification.get(index).feeds());
        for (String name : outputNames) {
          double error = relativeError(referenceOutputs.get(index).get(name), outputs.get(name));
          parity.merge(name, error, Math::max);
          if (!(error <= tolerance) && failing < 0) {
            failing = index;
          }
        }
      }
    }
    return new Verification(parity, failing);
  }

  /** A module of the graph (the first two levels of its nodes' scope) and how far rounding it alone moves the outputs. */
  record Group(String scope, List<Node> nodes, double contribution) {}

  /**
   * Measures, per module, the output error of a candidate in which only that module's nodes compute in float16 —
   * one session each. Rounding errors this small add up nearly linearly, so the contributions rank the modules and
   * predict what keeping each float32 buys.
   */
  private static List<Group> contributions(Path reference, Map<String, PrecisionReport.KeptNode> kept,
      Fp16Conversion.Options options, List<CalibrationSets.Set> verification,
      List<Map<String, float[]>> referenceOutputs, List<String> outputNames, Path scratch, int[] sessions) {
    Model model = ModelReader.read(reference);
    ShapeInference types = ShapeInference.of(model);
    List<Node> eligible = new ArrayList<>();
    for (Node node : model.graph().nodes()) {
      if (Fp16Conversion.computesInFloat(node, types) && !node.is(Onnx.CONSTANT) && !kept.containsKey(node.name())) {
        eligible.add(node);
      }
    }
    Map<String, List<Node>> modules = modules(eligible, 2);
    if (modules.size() > MAX_GROUPS) {
      modules = modules(eligible, 1);
    }
    List<Group> groups = new ArrayList<>();
    for (Map.Entry<String, List<Node>> module : modules.entrySet()) {
      Set<Node> members = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
      members.addAll(module.getValue());
      Map<String, PrecisionReport.KeptNode> others = new LinkedHashMap<>(kept);
      for (Node node : eligible) {
        if (!members.contains(node)) {
          others.put(node.name(), new PrecisionReport.KeptNode(node.opType().key(), "", null));
        }
      }
      Verification alone = verify(candidate(reference, others, options), verification, referenceOutputs, outputNames,
          Double.POSITIVE_INFINITY, scratch, sessions);
      groups.add(new Group(module.getKey(), module.getValue(), alone.worst()));
    }
    // Largest contribution first; ties in graph order (the sort is stable).
    groups.sort(Comparator.comparingDouble((Group group) -> group.contribution()).reversed());
    return groups;
  }

  /** Nodes by scope: the first {@code depth} levels of their names ({@code /down_blocks.0/resnets.1/...}). */
  private static Map<String, List<Node>> modules(List<Node> nodes, int depth) {
    Map<String, List<Node>> modules = new LinkedHashMap<>();
    int index = 0;
    for (Node node : nodes) {
      String[] parts = node.name().split("/");
      List<String> scope = new ArrayList<>();
      for (String part : parts) {
        if (!part.isEmpty()) {
          scope.add(part);
        }
      }
      String key;
      if (node.name().startsWith("/") && scope.size() > 1) {
        key = "/" + String.join("/", scope.subList(0, Math.min(depth, scope.size() - 1)));
      } else {
        // Unscoped names: consecutive runs of nodes in graph order.
        key = String.format(Locale.ROOT, "nodes %d-%d", index / UNSCOPED_RUN * UNSCOPED_RUN,
            index / UNSCOPED_RUN * UNSCOPED_RUN + UNSCOPED_RUN - 1);
      }
      modules.computeIfAbsent(key, name -> new ArrayList<>()).add(node);
      index++;
    }
    return modules;
  }

  /**
   * Keeps float32 the modules with the largest measured contributions: on the first call as many as the prediction
   * (the current error scaled by the share of the contributions left in float16) needs to fall to
   * {@value #TARGET_SHARE} of the tolerance — the rest is margin for inputs the search did not see; afterwards one
   * more module per call. Returns the last module kept, or null when none is left.
   */
  private static String keepGroups(List<Group> groups, Map<String, PrecisionReport.KeptNode> kept,
      Map<String, Range> ranges, Verification current, Verification start, double tolerance) {
    double total = groups.stream().mapToDouble(Group::contribution).sum();
    double left = groups.stream().filter(group -> !kept.containsKey(group.nodes().get(0).name()))
        .mapToDouble(Group::contribution).sum();
    boolean first = current == start;
    String last = null;
    for (Group group : groups) {
      if (kept.containsKey(group.nodes().get(0).name())) {
        continue;
      }
      if (first && last != null && total > 0 && start.worst() * left / total <= TARGET_SHARE * tolerance) {
        break;
      }
      double predicted = total > 0 ? start.worst() * (left - group.contribution()) / total : 0;
      String reason = String.format(Locale.ROOT, "verification: rounding module %s alone moves the outputs by %.3g "
          + "(the largest left of %.3g over all modules; worst output %.3g over --fp16-tolerance, predicted %.3g "
          + "with it float32)", quoted(group.scope()), group.contribution(), total, current.worst(), predicted);
      for (Node node : group.nodes()) {
        kept.put(node.name(), new PrecisionReport.KeptNode(node.opType().key(), reason, rangeOf(node, ranges)));
      }
      left -= group.contribution();
      last = group.scope();
      if (!first) {
        break;
      }
    }
    return last;
  }

  /** The largest |value| the node writes on the calibration inputs (null when none of its outputs was measured). */
  static Double rangeOf(Node node, Map<String, Range> ranges) {
    Double peak = null;
    for (Value output : node.outputs()) {
      Range range = output == null ? null : ranges.get(output.name());
      if (range != null) {
        peak = peak == null ? range.maxAbs : Math.max(peak, range.maxAbs);
      }
    }
    return peak;
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
   * Writes the CPU-runnable proof graph of a candidate to {@code target}: the named values exposed as outputs
   * (before lowering, which keeps graph outputs' names), contrib ops lowered to their specification, then fp16
   * storage emulated — an exposed float16 value is read after its rounding, so an overflow shows as Inf where it
   * happens. The candidate itself is left as it is: the rewrite works on a copy whose weights stay in a data file
   * inside {@code scratch} (a full-size UNet's float16 weights are 1.7 GB), deleted once the proof graph is written.
   */
  static void emulate(Model candidate, Set<String> exposed, Path target, Path scratch) {
    Path folder;
    try {
      folder = Files.createTempDirectory(scratch, "copy-");
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    try {
      Model copy = copy(candidate, folder);
      expose(copy, exposed);
      Lowering.forOrtCpu().lower(copy);
      Fp16StorageEmulation.apply(copy);
      ModelWriter.write(copy, target);
    } finally {
      deleteTree(folder);
    }
  }

  /**
   * An independent copy of {@code model}, read back from {@code folder}: tensors from 1 MiB on go to a data file
   * there and are read back mapped (lazily), so neither the write nor the copy holds the weights on the heap. The
   * copy reads from {@code folder} until it is written elsewhere; the caller deletes the folder.
   */
  static Model copy(Model model, Path folder) {
    Path file = folder.resolve("model.onnx");
    ModelWriter.write(model, file, dev.kiln.graph.WriteOptions.externalAbove(dev.kiln.graph.WriteOptions.DEFAULT_COMPUTED_THRESHOLD));
    return ModelReader.read(file);
  }

  /**
   * Writes {@code build(copy)} to {@code target}, where the copy is {@code model}'s, disk-backed in a folder under
   * {@code scratch} that is deleted once the result is written. Returns the written model for its graph only: the
   * weights it would read lazily are gone with the folder.
   */
  static Model writeCopy(Model model, Path scratch, Path target, java.util.function.UnaryOperator<Model> build) {
    Path folder;
    try {
      folder = Files.createTempDirectory(scratch, "copy-");
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    try {
      Model built = build.apply(copy(model, folder));
      ModelWriter.write(built, target);
      return built;
    } finally {
      deleteTree(folder);
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

  /** Adds the named float values (null: every one) as graph outputs (kept at their names through lowering and emulation). */
  public static void expose(Model model, Set<String> names) {
    ShapeInference types = ShapeInference.of(model);
    List<Value> extra = new ArrayList<>();
    for (Node node : model.graph().nodes()) {
      for (Value output : node.outputs()) {
        if (output != null && (names == null || names.contains(output.name())) && !output.isGraphOutput()) {
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
