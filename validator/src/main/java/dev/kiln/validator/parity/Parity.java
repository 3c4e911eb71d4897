package dev.kiln.validator.parity;

import dev.kiln.common.KilnException;
import dev.kiln.graph.Model;
import dev.kiln.graph.ModelReader;
import dev.kiln.graph.ModelWriter;
import dev.kiln.graph.Node;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Value;
import dev.kiln.graph.WriteOptions;
import dev.kiln.validator.ComponentKind;
import dev.kiln.validator.report.CheckResult;
import dev.kiln.validator.report.ComponentReport;
import dev.kiln.validator.report.Divergence;
import dev.kiln.validator.shapes.InputBinding;
import dev.kiln.validator.shapes.Size;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * Numeric parity of a candidate against a reference ONNX model (both in ORT on CPU, the candidate in its CPU
 * form) or against the expected outputs of the test data sets next to it; on the first failure, the first
 * tensor in topological order past tolerance.
 */
public final class Parity {
  /** Paired intermediates fetched per run of the two sessions while localising. */
  private static final int LOCALISATION_CHUNK = 128;

  private static final long INLINE_LIMIT = 1L << 30;
  private static final long LOCALISE_LIMIT = 2L << 30;
  private static final int HISTOGRAM_SAMPLES = 4096;

  /** How many seeds per size, the tolerances, and whether to localise a divergence. */
  public record Options(int seeds, Tolerances tolerances, boolean localise) {}

  private Parity() {}

  /**
   * Judges {@code candidateFile} against {@code referenceFile} (null: the test data sets) at every size × seed;
   * adds one check per size × seed × output to {@code report}.
   */
  public static void run(ComponentReport report, Path candidateFile, Path referenceFile, InputBinding binding,
      List<Size> sizes, Options options) {
    if (referenceFile != null && referenceFile.getFileName().toString().endsWith(".pt")) {
      throw new KilnException.BadInput(referenceFile + ": a TorchScript reference needs libtorch (DJL), which "
          + "this build does not bundle at run time; pass the ONNX export as --reference instead");
    }
    CpuForm.Prepared candidate = CpuForm.prepare(ModelReader.read(candidateFile));
    boolean fp16 = candidate.roundingPairs() > 0;
    report.getSummary().put("cpuForm", Map.of("lowered", candidate.lowered(), "fp16RoundingPairs", candidate.roundingPairs()));
    try (OrtRun candidateRun = candidate.unchanged() ? new OrtRun(candidateFile.toString(), "candidate " + candidateFile)
        : session(candidate.model(), "candidate " + candidateFile)) {
      if (referenceFile == null) {
        againstTestData(report, candidateFile, candidate, candidateRun, fp16, options);
        return;
      }
      CpuForm.Prepared referencePrepared = CpuForm.prepare(ModelReader.read(referenceFile));
      Model referenceModel = referencePrepared.model();
      ComponentKind kind = binding.kind();
      boolean localised = false;
      try (OrtRun referenceRun = referencePrepared.unchanged() ? new OrtRun(referenceFile.toString(), "reference " + referenceFile)
          : session(referenceModel, "reference " + referenceFile)) {
        for (Size size : sizes) {
          for (int seed = 0; seed < options.seeds(); seed++) {
            Map<String, Shape> shapes = new LinkedHashMap<>();
            binding.concreteInputs(size).forEach((value, shape) -> shapes.put(value.name(), shape));
            Map<String, Input> feed = Feeds.seeded(referenceModel, kind, shapes, seed);
            String label = size.label() + " seed " + seed;
            Map<String, float[]> expected;
            Map<String, float[]> actual;
            try {
              expected = referenceRun.run(feed);
              actual = candidateRun.run(feed);
            } catch (KilnException.ValidationFailed e) {
              report.add(CheckResult.fail("parity", label, null, e.getMessage(), null));
              continue;
            }
            boolean failed = compare(report, label, expected, actual, fp16, options.tolerances());
            if (failed && options.localise() && !localised && bytes(referenceModel) > LOCALISE_LIMIT) {
              localised = true;
              report.getSummary().put("localisation", "skipped: the reference holds over 2 GB of weights; every "
                  + "intermediate at once would not fit beside them");
            }
            if (failed && options.localise() && !localised) {
              localised = true;
              localise(report, label, () -> CpuForm.prepare(ModelReader.read(referenceFile)).model(),
                  () -> CpuForm.prepare(ModelReader.read(candidateFile)).model(), feed, fp16, options.tolerances());
            }
          }
        }
      }
    }
  }

  private static void againstTestData(ComponentReport report, Path candidateFile, CpuForm.Prepared candidate,
      OrtRun candidateRun, boolean fp16, Options options) {
    List<Feeds.TestData> sets = Feeds.testDataSets(candidateFile, ModelReader.read(candidateFile));
    if (sets.isEmpty()) {
      report.add(CheckResult.skip("parity", "not run: no --reference and no test_data_set_N next to the model"));
      return;
    }
    for (Feeds.TestData set : sets) {
      Map<String, float[]> actual;
      try {
        actual = candidateRun.run(set.inputs());
      } catch (KilnException.ValidationFailed e) {
        report.add(CheckResult.fail("parity", set.name(), null, e.getMessage(), null));
        continue;
      }
      compare(report, set.name(), set.outputs(), actual, fp16, options.tolerances());
    }
  }

  /** One check per output; returns whether any failed. */
  private static boolean compare(ComponentReport report, String label, Map<String, float[]> expected,
      Map<String, float[]> actual, boolean fp16, Tolerances tolerances) {
    boolean failed = false;
    for (Map.Entry<String, float[]> entry : expected.entrySet()) {
      String output = entry.getKey();
      float[] reference = entry.getValue();
      float[] candidate = actual.get(output);
      if (candidate == null) {
        report.add(CheckResult.fail("parity", label, output, "the candidate has no output " + output, null));
        failed = true;
        continue;
      }
      if (candidate.length != reference.length) {
        report.add(CheckResult.fail("parity", label, output, "the candidate's output has " + candidate.length
            + " elements, the reference's " + reference.length, null));
        failed = true;
        continue;
      }
      Metrics metrics = Metrics.of(reference, candidate);
      double atol = tolerances.atol(fp16);
      double rtol = tolerances.rtol(output, fp16);
      Map<String, Object> numbers = new LinkedHashMap<>(metrics.asMap());
      numbers.put("atol", atol);
      numbers.put("rtol", rtol);
      report.errorSamples().putIfAbsent(output, sample(reference, candidate));
      if (metrics.within(atol, rtol)) {
        report.add(CheckResult.pass("parity", label, output, String.format(java.util.Locale.ROOT,
            "max abs %.3g, max rel %.3g (<= %.3g), cosine %.6f", metrics.maxAbs(), metrics.maxRelative(), rtol,
            metrics.cosine()), numbers));
      } else {
        failed = true;
        String reason = metrics.candidateNonFinite() > metrics.referenceNonFinite()
            ? metrics.candidateNonFinite() + " NaN/Inf values (reference " + metrics.referenceNonFinite() + ")"
            : String.format(java.util.Locale.ROOT, "max abs %.3g exceeds %.3g + %.3g x scale %.3g (max rel %.3g), cosine %.6f",
                metrics.maxAbs(), atol, rtol, metrics.scale(), metrics.maxRelative(), metrics.cosine());
        report.add(CheckResult.fail("parity", label, output, reason, numbers));
      }
    }
    return failed;
  }

  /**
   * Runs both graphs with every float intermediate exposed and reports the first candidate tensor, in
   * topological order, whose same-named reference tensor differs past tolerance.
   */
  private static void localise(ComponentReport report, String label, Supplier<Model> referenceSupplier,
      Supplier<Model> candidateSupplier, Map<String, Input> feed, boolean fp16, Tolerances tolerances) {
    Model reference = referenceSupplier.get();
    Model candidate = candidateSupplier.get();
    CpuForm.exposeIntermediates(reference);
    List<String> order = CpuForm.exposeIntermediates(candidate);
    Map<String, Node> producers = new HashMap<>();
    for (Node node : candidate.graph().nodes()) {
      for (Value output : node.outputs()) {
        if (output != null) {
          producers.put(output.name(), node);
        }
      }
    }
    Map<String, Node> referenceNodes = new HashMap<>();
    for (Node node : reference.graph().nodes()) {
      referenceNodes.put(node.name(), node);
    }
    java.util.Set<String> referenceOutputs = new java.util.HashSet<>();
    reference.graph().outputs().forEach(value -> referenceOutputs.add(value.name()));
    java.util.Set<String> candidateOutputs = new java.util.HashSet<>();
    candidate.graph().outputs().forEach(value -> candidateOutputs.add(value.name()));
    List<String[]> pairs = new ArrayList<>();
    for (String name : order) {
      String paired = referenceOutputs.contains(name) ? name : boundaryPartner(candidate, name, referenceNodes);
      if (paired != null && referenceOutputs.contains(paired) && candidateOutputs.contains(name)) {
        pairs.add(new String[] {name, paired});
      }
    }
    int checked = 0;
    // Compared a chunk at a time, in topological order, stopping at the first divergence: every intermediate of both
    // graphs at once does not fit the heap for large sizes (an int8 graph also exposes each dequantized tensor).
    try (OrtRun referenceRun = session(reference, "reference (intermediates exposed)");
        OrtRun candidateRun = session(candidate, "candidate (intermediates exposed)")) {
      for (int start = 0; start < pairs.size(); start += LOCALISATION_CHUNK) {
        List<String[]> chunk = pairs.subList(start, Math.min(pairs.size(), start + LOCALISATION_CHUNK));
        java.util.Set<String> wanted = new java.util.LinkedHashSet<>();
        java.util.Set<String> got = new java.util.LinkedHashSet<>();
        for (String[] pair : chunk) {
          got.add(pair[0]);
          wanted.add(pair[1]);
        }
        Map<String, float[]> expected = referenceRun.run(feed, wanted);
        Map<String, float[]> actual = candidateRun.run(feed, got);
        for (String[] pair : chunk) {
          String name = pair[0];
          float[] want = expected.get(pair[1]);
          float[] have = actual.get(name);
          if (want == null || have == null || want.length != have.length) {
            continue;
          }
          checked++;
          Metrics metrics = Metrics.of(want, have);
          if (!metrics.within(tolerances.atol(fp16), tolerances.rtol(name, fp16))) {
            Node node = producers.get(name);
            report.getDivergences().add(new Divergence(label, name, node == null ? null : node.name(),
                node == null ? null : node.opType().name(), pair[1], Metrics.round(metrics.maxAbs()),
                Metrics.round(metrics.maxRelative()), Metrics.round(metrics.cosine()), checked));
            return;
          }
        }
      }
    }
    report.getSummary().put("localisation", "no paired intermediate past tolerance among " + checked
        + " (the divergence is inside a fused node or in an output only)");
  }

  /**
   * The reference tensor at the boundary of a fused node's output: a consumer of the candidate tensor that the
   * reference has too (same node name) reads, at the same input, the tensor the fused subgraph computed there.
   */
  private static String boundaryPartner(Model candidate, String name, Map<String, Node> referenceNodes) {
    Value value = candidate.graph().findValue(name);
    if (value == null) {
      return null;
    }
    for (var use : value.uses()) {
      Node twin = referenceNodes.get(use.node().name());
      if (twin != null && use.inputIndex() < twin.inputCount() && twin.input(use.inputIndex()) != null
          && twin.opType().equals(use.node().opType())) {
        return twin.input(use.inputIndex()).name();
      }
    }
    return null;
  }

  private static double[] sample(float[] reference, float[] candidate) {
    int count = Math.min(HISTOGRAM_SAMPLES, reference.length);
    double[] errors = new double[count];
    double stride = reference.length / (double) Math.max(1, count);
    for (int i = 0; i < count; i++) {
      int index = (int) (i * stride);
      errors[i] = Math.abs((double) reference[index] - candidate[index]);
    }
    return errors;
  }

  private static long bytes(Model model) {
    long bytes = 0;
    for (Value value : model.graph().initializers()) {
      bytes += value.initializer().byteSize();
    }
    return bytes;
  }

  /** A session over the model: from memory when it fits, else from a temporary folder written for it. */
  private static OrtRun session(Model model, String label) {
    if (bytes(model) < INLINE_LIMIT) {
      return new OrtRun(CpuForm.bytes(model), label);
    }
    try (dev.kiln.common.ScratchFolder folder = dev.kiln.common.ScratchFolder.create("validate")) {
      Path file = folder.path().resolve("model.onnx");
      ModelWriter.write(model, file, WriteOptions.defaults());
      return new OrtRun(file.toString(), label);
    }
  }

}
