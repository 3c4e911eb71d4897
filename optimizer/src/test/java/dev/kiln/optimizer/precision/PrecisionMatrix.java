package dev.kiln.optimizer.precision;

import dev.kiln.graph.DataType;
import dev.kiln.graph.Model;
import dev.kiln.graph.ModelReader;
import dev.kiln.graph.ModelWriter;
import dev.kiln.graph.Node;
import dev.kiln.graph.Value;
import dev.kiln.graph.infer.ShapeInference;
import dev.kiln.optimizer.OptimizationReport;
import dev.kiln.optimizer.Optimizer;
import dev.kiln.optimizer.profiles.Target;
import dev.kiln.runner.pipeline.PipelineFolder;
import dev.kiln.validator.lowering.Lowering;
import dev.kiln.validator.parity.Fp16StorageEmulation;
import dev.kiln.validator.parity.Metrics;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The precision parity matrix: a fixture pipeline converted with fp16 or mixed for cpu or cuda; every component's
 * every output against the float32 original, under fp16-storage emulation (cuda-profile graphs lowered to their
 * specification first), at three image sizes × two batch sizes, on inputs the runner really feeds (recorded by
 * {@link PipelineCalibration} with other prompts and seeds than mixed precision calibrates on). A batch of two is
 * two recorded calls stacked (the runner feeds the text encoders and VAEs one prompt or image at a time; the UNet's
 * rows are [negative; prompt] per call). Where an output misses the tolerance, the first tensor in graph order that
 * diverges from the float32 graph of the same target names the node to blame.
 *
 * <p>Not a test by itself: {@code bench/precision-matrix.sh} runs {@link #main} over the whole matrix;
 * PrecisionMatrixTest runs a representative part.
 */
final class PrecisionMatrix {
  private PrecisionMatrix() {}

  static final double TOLERANCE = 1e-2;
  static final List<String> COMPONENTS = List.of("text_encoder", "text_encoder_2", "unet", "vae_decoder", "vae_encoder");
  private static final Pattern SIZE = Pattern.compile(", ([0-9]+)x([0-9]+)");

  /** One component at one size and batch: its worst output, that output's error and, if over, the node to blame. */
  record Cell(String pipeline, String precision, String target, String component, String size, int batch, String output,
      double error, String blame, int sessions) {}

  /** The three sizes a pipeline is checked at: 2, 3 × 2 and 4 times its size multiple (small, non-square, larger). */
  static List<PipelineCalibration.Size> sizes(Path pipeline) {
    int multiple = PipelineFolder.open(pipeline).sizeMultiple();
    return List.of(new PipelineCalibration.Size(2 * multiple, 2 * multiple), new PipelineCalibration.Size(3 * multiple, 2 * multiple),
        new PipelineCalibration.Size(4 * multiple, 4 * multiple));
  }

  /** Converts {@code pipeline} (mixed: calibrated from the runner) and evaluates {@code components} of the result. */
  static List<Cell> run(Path pipeline, String name, String precision, String target, Set<String> components, Path scratch) {
    Path converted = scratch.resolve(name + "-" + precision + "-" + target);
    OptimizationReport report = Optimizer.optimize(pipeline, converted, Optimizer.Options.of(Target.parse(target))
        .withPrecision(new PrecisionOptions(PrecisionOptions.Mode.parse(precision), Fp16Conversion.Options.defaults(), null, TOLERANCE)));
    return evaluate(pipeline, name, precision, target, converted, report, components, scratch);
  }

  /** The cells of an already converted pipeline folder ({@code report}: its optimize report, for the session counts). */
  static List<Cell> evaluate(Path pipeline, String name, String precision, String target, Path converted,
      OptimizationReport report, Set<String> components, Path scratch) {
    Map<String, Integer> sessions = new TreeMap<>();
    report.precision().forEach((file, converted16) -> sessions.put(Path.of(file).getParent().getFileName().toString(), converted16.sessions()));
    List<PipelineCalibration.Size> sizes = sizes(pipeline);
    // Held-out inputs: prompts 1 and 3 of the defaults (mixed calibrates on 0 and 2), other seeds, these sizes; one
    // noise per prompt at every size (the cells are each size's first set and one stacked pair, as before calibration
    // recorded several noises at the smallest size).
    PipelineCalibration.Capture evaluation = PipelineCalibration.capture(pipeline, PipelineCalibration.Options.defaults()
        .withPrompts(List.of(PipelineCalibration.DEFAULT_PROMPTS.get(1), PipelineCalibration.DEFAULT_PROMPTS.get(3)))
        .withSizes(sizes).withSteps(3).withSeed(1000).withSmallestSeeds(1));
    List<Cell> cells = new ArrayList<>();
    Path fp32 = null;
    for (String component : COMPONENTS) {
      Path candidateFile = converted.resolve(component).resolve("model.onnx");
      if (!components.contains(component) || !Files.isRegularFile(candidateFile) || evaluation.component(component) == null) {
        continue;
      }
      Path proof = scratch.resolve(name + "-" + precision + "-" + target + "-" + component + "-proof.onnx");
      ModelWriter.write(proofGraph(ModelReader.read(candidateFile), Set.of()), proof);
      Path reference = pipeline.resolve(component).resolve("model.onnx");
      List<CalibrationSets.Set> sets = new ArrayList<>(evaluation.component(component).interleaved());
      Map<String, List<CalibrationSets.Set>> bySize = new LinkedHashMap<>();
      for (PipelineCalibration.Size size : sizes) {
        bySize.put(size.toString(), new ArrayList<>());
      }
      for (CalibrationSets.Set set : sets) {
        Matcher matcher = SIZE.matcher(set.name());
        String size = component.startsWith("text_encoder") ? "any" : matcher.find() ? matcher.group(1) + "x" + matcher.group(2) : "?";
        bySize.computeIfAbsent(size, key -> new ArrayList<>()).add(set);
      }
      if (component.startsWith("text_encoder")) {
        bySize.keySet().removeIf(size -> !size.equals("any"));
      }
      try (OrtCpu expected = new OrtCpu(reference); OrtCpu actual = new OrtCpu(proof)) {
        for (Map.Entry<String, List<CalibrationSets.Set>> group : bySize.entrySet()) {
          if (group.getValue().isEmpty()) {
            continue;
          }
          for (int batch : new int[] {1, 2}) {
            CalibrationSets.Set input = batch == 1 ? group.getValue().get(0) : stacked(group.getValue());
            Map<String, float[]> want = expected.run(input.feeds());
            Map<String, float[]> got = actual.run(input.feeds());
            String worst = null;
            double worstError = -1;
            for (Map.Entry<String, float[]> output : want.entrySet()) {
              double error = Metrics.scaleRelativeError(output.getValue(), got.get(output.getKey()));
              if (!(error <= worstError)) {
                worst = output.getKey();
                worstError = error;
              }
            }
            String blame = "";
            if (!(worstError <= TOLERANCE)) {
              if (fp32 == null) {
                fp32 = scratch.resolve(name + "-fp32-" + target);
                Optimizer.optimize(pipeline, fp32, Optimizer.Options.of(Target.parse(target)));
              }
              blame = blame(fp32.resolve(component).resolve("model.onnx"), candidateFile, input, scratch);
            }
            cells.add(new Cell(name, precision, target, component, group.getKey(), batch, worst, worstError, blame,
                sessions.getOrDefault(component, 0)));
          }
        }
      }
    }
    return cells;
  }

  /**
   * Two recorded calls of the same shapes as one batch of two: inputs with a batch axis are concatenated, the rest
   * (a scalar timestep) taken from the first. The partner is the last set of the group whose unbatched inputs equal
   * the first's (the same timestep), so the rows differ in prompt and noise only.
   */
  static CalibrationSets.Set stacked(List<CalibrationSets.Set> group) {
    CalibrationSets.Set first = group.get(0);
    CalibrationSets.Set partner = first;
    for (int index = group.size() - 1; index > 0; index--) {
      if (sameUnbatched(first, group.get(index))) {
        partner = group.get(index);
        break;
      }
    }
    long rows = rows(first);
    Map<String, CalibrationSets.Feed> feeds = new LinkedHashMap<>();
    for (Map.Entry<String, CalibrationSets.Feed> entry : first.feeds().entrySet()) {
      CalibrationSets.Feed a = entry.getValue();
      CalibrationSets.Feed b = partner.feeds().get(entry.getKey());
      if (a.shape().length == 0 || a.shape()[0] != rows || !Arrays.equals(a.shape(), b.shape())) {
        feeds.put(entry.getKey(), a);
        continue;
      }
      long[] shape = a.shape().clone();
      shape[0] *= 2;
      feeds.put(entry.getKey(), new CalibrationSets.Feed(shape, concatenate(a.values(), b.values())));
    }
    return new CalibrationSets.Set(first.name() + " + " + partner.name(), feeds);
  }

  /** The batch of a set: the first axis of its first input that has one. */
  private static long rows(CalibrationSets.Set set) {
    return set.feeds().values().stream().filter(feed -> feed.shape().length > 0).mapToLong(feed -> feed.shape()[0]).findFirst().orElse(1);
  }

  private static boolean sameUnbatched(CalibrationSets.Set a, CalibrationSets.Set b) {
    long rows = rows(a);
    for (Map.Entry<String, CalibrationSets.Feed> entry : a.feeds().entrySet()) {
      CalibrationSets.Feed other = b.feeds().get(entry.getKey());
      if (other == null || !Arrays.equals(entry.getValue().shape(), other.shape())) {
        return false;
      }
      if ((entry.getValue().shape().length == 0 || entry.getValue().shape()[0] != rows)
          && !Arrays.deepEquals(new Object[] {entry.getValue().values()}, new Object[] {other.values()})) {
        return false;
      }
    }
    return true;
  }

  private static Object concatenate(Object a, Object b) {
    if (a instanceof float[] x) {
      float[] y = (float[]) b;
      float[] all = Arrays.copyOf(x, x.length + y.length);
      System.arraycopy(y, 0, all, x.length, y.length);
      return all;
    }
    if (a instanceof long[] x) {
      long[] y = (long[]) b;
      long[] all = Arrays.copyOf(x, x.length + y.length);
      System.arraycopy(y, 0, all, x.length, y.length);
      return all;
    }
    int[] x = (int[]) a;
    int[] y = (int[]) b;
    int[] all = Arrays.copyOf(x, x.length + y.length);
    System.arraycopy(y, 0, all, x.length, y.length);
    return all;
  }

  /** The candidate as the CPU runs it for proof: named values exposed, lowered, fp16 storage emulated. */
  static Model proofGraph(Model candidate, Set<String> exposed) {
    expose(candidate, exposed);
    Lowering.forOrtCpu().lower(candidate);
    Fp16StorageEmulation.apply(candidate);
    return candidate;
  }

  /**
   * The producer of the first float tensor, in the candidate's graph order, whose emulated value differs from the
   * float32 graph of the same target by more than the tolerance (scale-relative), with that error.
   */
  static String blame(Path fp32File, Path candidateFile, CalibrationSets.Set input, Path scratch) {
    Model candidate = ModelReader.read(candidateFile);
    Model reference = ModelReader.read(fp32File);
    Set<String> referenceNames = floatValues(reference).keySet();
    Map<String, Node> candidateValues = floatValues(candidate);
    candidateValues.keySet().retainAll(referenceNames);
    Path referenceProof = scratch.resolve("blame-reference.onnx");
    expose(reference, candidateValues.keySet());
    Lowering.forOrtCpu().lower(reference);
    ModelWriter.write(reference, referenceProof);
    Path candidateProof = scratch.resolve("blame-candidate.onnx");
    ModelWriter.write(proofGraph(candidate, candidateValues.keySet()), candidateProof);
    Map<String, float[]> want;
    Map<String, float[]> got;
    try (OrtCpu session = new OrtCpu(referenceProof)) {
      want = session.run(input.feeds());
    }
    try (OrtCpu session = new OrtCpu(candidateProof)) {
      got = session.run(input.feeds());
    }
    for (Map.Entry<String, Node> value : candidateValues.entrySet()) {
      float[] expected = want.get(value.getKey());
      float[] actual = got.get(value.getKey());
      if (expected == null || actual == null || expected.length != actual.length) {
        continue;
      }
      double error = Metrics.scaleRelativeError(expected, actual);
      if (!(error <= TOLERANCE)) {
        return String.format(Locale.ROOT, "%s (%s) first diverges: %s at %.3g", dev.kiln.common.Printable.quoted(value.getValue().name()),
            value.getValue().opType().key(), dev.kiln.common.Printable.quoted(value.getKey()), error);
      }
    }
    return "no single tensor (rounding accumulated)";
  }

  /** Float32 or float16 values nodes make, in graph order, with their producers. */
  private static Map<String, Node> floatValues(Model model) {
    ShapeInference types = ShapeInference.of(model);
    Map<String, Node> values = new LinkedHashMap<>();
    for (Node node : model.graph().nodes()) {
      for (Value output : node.outputs()) {
        if (output != null && !output.isGraphOutput()
            && (types.dataType(output) == DataType.FLOAT || types.dataType(output) == DataType.FLOAT16)) {
          values.put(output.name(), node);
        }
      }
    }
    return values;
  }

  private static void expose(Model model, Set<String> names) {
    if (names.isEmpty()) {
      return;
    }
    ShapeInference types = ShapeInference.of(model);
    List<Value> extra = new ArrayList<>();
    for (Node node : model.graph().nodes()) {
      for (Value output : node.outputs()) {
        if (output != null && names.contains(output.name()) && !output.isGraphOutput()) {
          output.setType(types.dataType(output), null);
          extra.add(output);
        }
      }
    }
    extra.forEach(model.graph()::addOutput);
  }

  /** bench/precision-matrix.sh: args PIPELINES_ROOT SCRATCH [PIPELINE...]; prints the table. */
  public static void main(String[] args) throws Exception {
    Path root = Path.of(args[0]);
    Path scratch = Files.createDirectories(Path.of(args[1]));
    List<String> pipelines = args.length > 2 ? List.of(args).subList(2, args.length) : List.of("sd15", "sd2", "sdxl", "tiny-sd");
    System.out.println("| pipeline | precision | target | component | size | batch | worst output | error | <= 1e-2 | ORT sessions | blame |");
    System.out.println("|---|---|---|---|---|---|---|---|---|---|---|");
    int total = 0;
    int over = 0;
    for (String pipeline : pipelines) {
      for (String precision : List.of("fp16", "mixed")) {
        for (String target : List.of("cpu", "cuda")) {
          long start = System.nanoTime();
          List<Cell> cells = run(root.resolve(pipeline), pipeline, precision, target, Set.copyOf(COMPONENTS), scratch);
          for (Cell cell : cells) {
            total++;
            over += cell.error() <= TOLERANCE ? 0 : 1;
            System.out.printf(Locale.ROOT, "| %s | %s | %s | %s | %s | %d | %s | %.3g | %s | %d | %s |%n", cell.pipeline(), cell.precision(),
                cell.target(), cell.component(), cell.size(), cell.batch(), dev.kiln.common.Printable.quoted(cell.output()),
                cell.error(), cell.error() <= TOLERANCE ? "yes" : "no", cell.sessions(), cell.blame().replace("|", "\\|"));
          }
          System.err.printf(Locale.ROOT, "%s %s %s: %d cells in %.1f s%n", pipeline, precision, target, cells.size(),
              (System.nanoTime() - start) / 1e9);
        }
      }
    }
    System.out.printf(Locale.ROOT, "%n%d cells, %d within 1e-2, %d over (each names its node to blame)%n", total, total - over, over);
  }
}
