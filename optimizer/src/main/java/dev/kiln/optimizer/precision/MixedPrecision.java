package dev.kiln.optimizer.precision;

import dev.kiln.common.KilnException;
import dev.kiln.graph.DataType;
import dev.kiln.graph.Model;
import dev.kiln.graph.SharedTensors;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Value;
import dev.kiln.graph.infer.ShapeInference;
import dev.kiln.validator.lowering.Lowering;
import dev.kiln.validator.parity.Fp16StorageEmulation;
import dev.kiln.validator.parity.Metrics;
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

/**
 * Automatic mixed precision from measured ranges: calibrate the float32 graph on ORT's CPU provider, every float
 * intermediate reduced to its range inside the graph, keep float32 the nodes whose values would leave float16's
 * range, then verify the candidate under fp16-storage emulation (the validator's harness: every tensor stored as
 * float16 is rounded through an explicit Cast pair) against float32, localise the first diverging tensor, keep its
 * producer float32, and repeat.
 *
 * <p>Cost. Every graph the search runs is an in-memory copy of the model (graph copied, weights shared) that ORT gets
 * without its weights and reads them in place ({@link SessionWeights}: the data file's maps; each float16 weight
 * converted once for all candidates); nothing is written to disk but that float16 file, and the sets of a run go
 * two at a time ({@link SetRuns}).
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
    /** Measured in the graph only where a rule reads it (see {@link RangeStatistics}); exposed values always. */
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

    /** Adds another set's statistics of the same value (as if its values had gone through {@link #add}). */
    void merge(Range other) {
      elements = Math.max(elements, other.elements);
      maxAbs = Math.max(maxAbs, other.maxAbs);
      minNonZero = Math.min(minNonZero, other.minNonZero);
      nonFinite += other.nonFinite;
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
    try (dev.kiln.common.ScratchFolder scratch = dev.kiln.common.ScratchFolder.create("precision")) {
      return search(model, calibration, heldOut, options, tolerance, scratch.path());
    }
  }

  private static PrecisionReport search(Model model, List<CalibrationSets.Set> calibration,
      List<CalibrationSets.Set> verification, Fp16Conversion.Options options, double tolerance, Path scratch) {
    try (SessionWeights weights = new SessionWeights(model, scratch)) {
      return search(model, calibration, verification, options, tolerance, weights);
    }
  }

  /**
   * The search proper. Every graph it runs is an in-memory copy of {@code model} ({@link SharedTensors#copy}: the
   * graph copied, the weights shared), handed to ORT without its weights, which ORT reads from {@code weights}.
   */
  private static PrecisionReport search(Model model, List<CalibrationSets.Set> calibration,
      List<CalibrationSets.Set> verification, Fp16Conversion.Options options, double tolerance, SessionWeights weights) {
    int[] sessions = {0};
    Model reference = SharedTensors.copy(model);
    List<String> outputNames = model.graph().outputs().stream().map(Value::name).toList();
    Calibration measured = calibrate(reference, calibration, verification, outputNames, weights, sessions);
    Map<String, Range> ranges = measured.ranges();
    Map<String, PrecisionReport.KeptNode> kept = KeepRules.decide(model, ranges, measured.internals());
    Map<String, PrecisionReport.KeptNode> fixedThreshold = AutoCastRule.keep(model, ranges, AutoCastRule.DATA_MAX);
    Map<String, Node> modelNodes = new HashMap<>();
    model.graph().nodes().forEach(node -> modelNodes.putIfAbsent(node.name(), node));
    Localisation localisation = new Localisation(reference, modelNodes, verification, tolerance, weights, sessions);
    boolean localising = true;
    double beforeLocal = Double.POSITIVE_INFINITY;
    int unimproved = 0;
    Verification verified = null;
    String lastBlame = null;
    List<Group> groups = null;
    Verification beforeGroups = null;
    for (int round = 0; round <= MAX_REFINEMENTS; round++) {
      Model candidate = candidate(reference, kept, options, weights);
      verified = verify(candidate, verification, measured.referenceOutputs(), outputNames, tolerance, weights, sessions);
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
            weights, sessions);
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
    Model thresholdCandidate = candidate(reference, fixedThreshold, options, weights);
    Map<String, Double> thresholdParity = verify(thresholdCandidate, verification, measured.referenceOutputs(),
        outputNames, tolerance, weights, new int[1]).parity();
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
   * Measures the float32 graph over the calibration sets (ranges) and runs it on the verification sets (reference
   * outputs), in one session: the fused graph's float values and, after lowering (attention decomposed to
   * MatMul/Softmax so that its scores are seen), the values inside each fused op are reduced to their ranges inside
   * the graph ({@link RangeStatistics}), so each set is one run and only scalars leave ORT. Sets run two at a time,
   * their results combined in set order.
   */
  private static Calibration calibrate(Model reference, List<CalibrationSets.Set> calibration,
      List<CalibrationSets.Set> verification, List<String> outputNames, SessionWeights weights, int[] sessions) {
    Model graph = SharedTensors.copy(reference);
    int interfaceOutputs = graph.graph().outputs().size();
    // Exposed before lowering, the fused graph's values keep their names through it.
    expose(graph, Set.copyOf(floatValueNames(graph)));
    Set<String> fusedNodes = new HashSet<>();
    graph.graph().nodes().forEach(node -> fusedNodes.add(node.name()));
    try {
      Lowering.decomposingAttention().lower(graph);
    } catch (KilnException.Unsupported e) {
      // An attention form the decomposition refuses: calibrate without its internals.
      graph = SharedTensors.copy(reference);
      expose(graph, Set.copyOf(floatValueNames(graph)));
      Lowering.forOrtCpu().lower(graph);
    }
    Map<String, List<KeepRules.Internal>> internals = new LinkedHashMap<>();
    ShapeInference types = ShapeInference.of(graph);
    Map<String, KeepRules.Internal> byValue = new LinkedHashMap<>();
    Map<String, String> ownerOf = new LinkedHashMap<>();
    // The measured values: the graph's outputs and the fused graph's values (exposed above), then the internals.
    Map<String, Value> measuredValues = new LinkedHashMap<>();
    for (Value output : graph.graph().outputs()) {
      if (output.producer() != null && types.dataType(output) == DataType.FLOAT) {
        measuredValues.putIfAbsent(output.name(), output);
      }
    }
    for (Node node : graph.graph().nodes()) {
      String owner = owner(node.name(), fusedNodes);
      if (owner == null) {
        continue;
      }
      for (Value output : node.outputs()) {
        if (output != null && types.dataType(output) == DataType.FLOAT && !output.isGraphOutput()) {
          measuredValues.putIfAbsent(output.name(), output);
          String firstInput = node.inputCount() > 0 && node.input(0) != null ? node.input(0).name() : "";
          byValue.put(output.name(), new KeepRules.Internal(output.name(), node.opType().key(), firstInput, null));
          ownerOf.put(output.name(), owner);
        }
      }
    }
    Map<String, Range> ranges = new HashMap<>();
    List<Map<String, float[]>> referenceOutputs;
    if (measuredValues.size() <= CALIBRATION_CHUNK) {
      // A small graph: its values fit one run exposed, read whole (Range.add); in-graph reductions would only add
      // nodes to set up (the tiny pipeline's components measured slower that way).
      expose(graph, measuredValues.keySet());
      try (OrtCpu session = new OrtCpu(graph, weights)) {
        sessions[0]++;
        List<Map<String, float[]>> perSet = SetRuns.map(calibration, weights.serial, set -> session.run(set.feeds()));
        for (int index = 0; index < calibration.size(); index++) {
          calibration.get(index).feeds().forEach((name, feed) -> {
            if (feed.values() instanceof float[] values) {
              ranges.computeIfAbsent(name, key -> new Range()).add(values);
            }
          });
          perSet.get(index).forEach((name, values) -> ranges.computeIfAbsent(name, key -> new Range()).add(values));
        }
        referenceOutputs = referenceOutputs(session, verification, outputNames, weights);
      }
      return calibration(ranges, byValue, ownerOf, internals, referenceOutputs);
    }
    // Only the interface stays a graph output: the reductions read the values where they are made.
    while (graph.graph().outputs().size() > interfaceOutputs) {
      graph.graph().removeOutput(graph.graph().outputs().size() - 1);
    }
    // The accumulation rule reads element counts of a ReduceMean's input and output only.
    Set<String> counted = new HashSet<>();
    for (Node node : reference.graph().nodes()) {
      if (node.is(Onnx.REDUCE_MEAN) && node.inputCount() > 0 && node.input(0) != null && node.output(0) != null) {
        counted.add(node.input(0).name());
        counted.add(node.output(0).name());
      }
    }
    RangeStatistics statistics = RangeStatistics.append(graph, List.copyOf(measuredValues.values()), counted);
    Set<String> nonFinite = java.util.Collections.synchronizedSet(new java.util.TreeSet<>());
    try (OrtCpu session = new OrtCpu(graph, weights)) {
      sessions[0]++;
      Set<String> scalars = statistics.outputNames();
      List<Map<String, Range>> perSet = SetRuns.map(calibration, weights.serial,
          set -> statistics.ranges(session.runNumbers(set.feeds(), scalars), nonFinite));
      for (int index = 0; index < calibration.size(); index++) {
        calibration.get(index).feeds().forEach((name, feed) -> {
          if (feed.values() instanceof float[] values) {
            ranges.computeIfAbsent(name, key -> new Range()).add(values);
          }
        });
        perSet.get(index).forEach((name, range) -> ranges.computeIfAbsent(name, key -> new Range()).merge(range));
      }
      referenceOutputs = referenceOutputs(session, verification, outputNames, weights);
    }
    if (!nonFinite.isEmpty()) {
      measureExposed(reference, nonFinite, calibration, ranges, weights, sessions);
    }
    return calibration(ranges, byValue, ownerOf, internals, referenceOutputs);
  }

  private static List<Map<String, float[]>> referenceOutputs(OrtCpu session, List<CalibrationSets.Set> verification,
      List<String> outputNames, SessionWeights weights) {
    return SetRuns.map(verification, weights.serial, set -> {
      Map<String, float[]> all = session.run(set.feeds(), new java.util.LinkedHashSet<>(outputNames));
      Map<String, float[]> outputs = new LinkedHashMap<>();
      outputNames.forEach(name -> outputs.put(name, all.get(name)));
      return outputs;
    });
  }

  private static Calibration calibration(Map<String, Range> ranges, Map<String, KeepRules.Internal> byValue,
      Map<String, String> ownerOf, Map<String, List<KeepRules.Internal>> internals,
      List<Map<String, float[]>> referenceOutputs) {
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
   * The exact ranges of values with a non-finite element somewhere (Range's max and min count finite values only):
   * the values exposed and read whole, in one more session — float32 overflow is rare, and then only those values.
   */
  private static void measureExposed(Model reference, Set<String> names, List<CalibrationSets.Set> calibration,
      Map<String, Range> ranges, SessionWeights weights, int[] sessions) {
    Model graph = SharedTensors.copy(reference);
    expose(graph, names);
    try {
      Lowering.decomposingAttention().lower(graph);
    } catch (KilnException.Unsupported e) {
      graph = SharedTensors.copy(reference);
      expose(graph, names);
      Lowering.forOrtCpu().lower(graph);
    }
    Set<String> internal = new HashSet<>(names);
    graph.graph().outputs().forEach(output -> internal.remove(output.name()));
    expose(graph, internal);
    names.forEach(ranges::remove);
    try (OrtCpu session = new OrtCpu(graph, weights)) {
      sessions[0]++;
      for (CalibrationSets.Set set : calibration) {
        session.runEach(set.feeds(), CALIBRATION_CHUNK, (name, values) -> {
          if (names.contains(name)) {
            ranges.computeIfAbsent(name, key -> new Range()).add(values);
          }
        });
      }
    }
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

  /**
   * The candidate keeping {@code kept} float32, converted as the output will be, its float16 weights the search's one
   * converted copy of each (see {@link SessionWeights#shareHalves}).
   */
  private static Model candidate(Model reference, Map<String, PrecisionReport.KeptNode> kept,
      Fp16Conversion.Options options, SessionWeights weights) {
    Model candidate = SharedTensors.copy(reference);
    Map<String, dev.kiln.graph.Tensor> sources = new HashMap<>();
    for (Value initializer : candidate.graph().initializers()) {
      if (initializer.initializer().dataType() == DataType.FLOAT) {
        sources.put(initializer.name(), initializer.initializer());
      }
    }
    Fp16Conversion.convert(candidate, byNode(candidate, kept), options);
    weights.shareHalves(candidate, sources);
    return candidate;
  }

  private static Verification verify(Model candidate, List<CalibrationSets.Set> verification,
      List<Map<String, float[]>> referenceOutputs, List<String> outputNames, double tolerance, SessionWeights weights,
      int[] sessions) {
    Model emulated = emulate(candidate, Set.of());
    Map<String, Double> parity = new LinkedHashMap<>();
    int failing = -1;
    try (OrtCpu session = new OrtCpu(emulated, weights)) {
      sessions[0]++;
      List<Map<String, float[]>> results = SetRuns.map(verification, weights.serial, set -> session.run(set.feeds()));
      for (int index = 0; index < verification.size(); index++) {
        Map<String, float[]> outputs = results.get(index);
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
  private static List<Group> contributions(Model reference, Map<String, PrecisionReport.KeptNode> kept,
      Fp16Conversion.Options options, List<CalibrationSets.Set> verification,
      List<Map<String, float[]>> referenceOutputs, List<String> outputNames, SessionWeights weights, int[] sessions) {
    Model model = reference;
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
    // The modules' candidates are independent: measured two at a time for models of at most 1 GiB of weights (see
    // SetRuns), each counting its session on its own, the results taken in module order (so the ranking below does not
    // depend on which finished first).
    List<Map.Entry<String, List<Node>>> entries = List.copyOf(modules.entrySet());
    List<Double> worst = SetRuns.candidates(entries, weights.serial, module -> {
      Set<Node> members = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
      members.addAll(module.getValue());
      Map<String, PrecisionReport.KeptNode> others = new LinkedHashMap<>(kept);
      for (Node node : eligible) {
        if (!members.contains(node)) {
          others.put(node.name(), new PrecisionReport.KeptNode(node.opType().key(), "", null));
        }
      }
      return verify(candidate(reference, others, options, weights), verification, referenceOutputs, outputNames,
          Double.POSITIVE_INFINITY, weights, new int[1]).worst();
    });
    sessions[0] += entries.size();
    List<Group> groups = new ArrayList<>();
    for (int index = 0; index < entries.size(); index++) {
      groups.add(new Group(entries.get(index).getKey(), entries.get(index).getValue(), worst.get(index)));
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
   * The CPU-runnable proof graph of a candidate: the named values exposed as outputs (before lowering, which keeps
   * graph outputs' names), contrib ops lowered to their specification, then fp16 storage emulated — an exposed
   * float16 value is read after its rounding, so an overflow shows as Inf where it happens. The candidate itself is
   * left as it is: the rewrite works on an in-memory copy that shares its weights.
   */
  static Model emulate(Model candidate, Set<String> exposed) {
    Model copy = SharedTensors.copy(candidate);
    expose(copy, exposed);
    Lowering.forOrtCpu().lower(copy);
    Fp16StorageEmulation.apply(copy);
    return copy;
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

}
