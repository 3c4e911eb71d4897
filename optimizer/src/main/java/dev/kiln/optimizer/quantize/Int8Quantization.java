package dev.kiln.optimizer.quantize;

import ai.onnxruntime.OrtSession;
import dev.kiln.common.KilnException;
import dev.kiln.common.Printable;
import dev.kiln.graph.GraphEditor;
import dev.kiln.graph.Model;
import dev.kiln.graph.ModelReader;
import dev.kiln.graph.ModelWriter;
import dev.kiln.graph.Microsoft;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.OpType;
import dev.kiln.graph.Value;
import dev.kiln.optimizer.precision.CalibrationSets;
import dev.kiln.optimizer.precision.OrtCpu;
import dev.kiln.validator.parity.Metrics;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * Post-training int8 quantization in QDQ form for ONNX Runtime's CPU provider: calibrate the float32 graph on real
 * inputs, choose per-tensor activation ranges (MinMax or percentile), quantize weights per output channel
 * (symmetric int8), place QuantizeLinear/DequantizeLinear where ORT's QDQ selectors fuse them into int8 kernels
 * (QLinearConv, MatMulIntegerToFloat), keep the sensitive layers float, and verify: parity per output on held-out
 * inputs with ORT's optimizations on (the kernels users get), and the int8 kernels ORT actually selected.
 */
public final class Int8Quantization {
  private Int8Quantization() {}

  /** How a candidate is treated. */
  enum Treatment {
    INT8, WEIGHTS_ONLY;

    String id() {
      return this == INT8 ? "int8" : "weights-only";
    }
  }

  /** The ops ORT's optimized graph runs in int8 (or on int8 weights) that the report counts. */
  private static final List<OpType> KERNELS = List.of(Onnx.Q_LINEAR_CONV, Onnx.Q_LINEAR_MAT_MUL, Onnx.CONV_INTEGER,
      Onnx.MAT_MUL_INTEGER, Microsoft.MAT_MUL_INTEGER_TO_FLOAT, Microsoft.DYNAMIC_QUANTIZE_MAT_MUL, Microsoft.Q_GEMM,
      Microsoft.Q_LINEAR_CONV, Microsoft.Q_LINEAR_ADD, Microsoft.Q_LINEAR_MUL, Onnx.QUANTIZE_LINEAR,
      Onnx.DEQUANTIZE_LINEAR);

  /**
   * Quantizes {@code model} (float32, fused for cpu) in place.
   *
   * @param sets calibration inputs (at least one); with four or more, every second one is held out for parity
   * @param source where the sets came from, for the report
   */
  public static Int8Report quantize(Model model, List<CalibrationSets.Set> sets, String source, Int8Options options) {
    List<List<CalibrationSets.Set>> split = split(sets);
    return quantize(model, split.get(0), split.get(1), source, options);
  }

  /** Calibration and held-out sets: even and odd ones from four sets on, else all of them for both. */
  public static List<List<CalibrationSets.Set>> split(List<CalibrationSets.Set> sets) {
    List<CalibrationSets.Set> calibration = new ArrayList<>();
    List<CalibrationSets.Set> heldOut = new ArrayList<>();
    boolean separate = sets.size() >= 4;
    for (int index = 0; index < sets.size(); index++) {
      if (!separate || index % 2 == 0) {
        calibration.add(sets.get(index));
      }
      if (!separate || index % 2 == 1) {
        heldOut.add(sets.get(index));
      }
    }
    return List.of(calibration, heldOut);
  }

  /**
   * As {@link #quantize(Model, List, String, Int8Options)} with an explicit split: ranges from {@code calibration},
   * parity on {@code heldOut} (the same sets when the caller has no others: the report says so).
   */
  public static Int8Report quantize(Model model, List<CalibrationSets.Set> calibration, List<CalibrationSets.Set> heldOut,
      String source, Int8Options options) {
    return quantize(model, calibration, heldOut, source, options, Set.of());
  }

  /**
   * As {@link #quantize(Model, List, List, String, Int8Options)}, keeping the nodes named in {@code blockNodes}
   * ({@code --block-node}) float too; a name that matches no node is refused.
   */
  public static Int8Report quantize(Model model, List<CalibrationSets.Set> calibration, List<CalibrationSets.Set> heldOut,
      String source, Int8Options options, Set<String> blockNodes) {
    for (String name : new java.util.TreeSet<>(blockNodes)) {
      if (model.graph().findNode(name) == null) {
        throw new KilnException.BadInput("--block-node " + Printable.quoted(name) + ": no node of that name in the model");
      }
    }
    if (calibration.isEmpty()) {
      throw new KilnException.BadInput("--precision int8 needs calibration inputs (--calibration DIR in the ONNX "
          + "test-data layout, or test_data_set_N folders next to the model)");
    }
    long opset = model.opsetVersion("");
    if (opset < 13) {
      throw new KilnException.Unsupported("--precision int8 needs opset 13 or later (per-channel DequantizeLinear); "
          + "the model imports opset " + opset);
    }
    try (dev.kiln.common.ScratchFolder scratch = dev.kiln.common.ScratchFolder.create("int8")) {
      return quantize(model, calibration, heldOut.isEmpty() ? calibration : heldOut, source, options, blockNodes,
          scratch.path());
    }
  }

  private static Int8Report quantize(Model model, List<CalibrationSets.Set> calibration, List<CalibrationSets.Set> heldOut,
      String source, Int8Options options, Set<String> blockNodes, Path scratch) {
    boolean separate = heldOut.stream().noneMatch(calibration::contains);
    long bytesBefore = initializerBytes(model);
    List<Node> candidates = candidates(model);
    Map<Node, String> kept = new LinkedHashMap<>(options.keepDefaults() ? FloatKeptLayers.decide(candidates) : Map.of());
    for (Node node : candidates) {
      if (blockNodes.contains(node.name())) {
        kept.put(node, "--block-node");
      }
    }
    Set<String> tensors = new LinkedHashSet<>();
    for (Node node : candidates) {
      // Every candidate's tensors, kept ones too: the per-layer measurement quantizes each of them alone.
      if (treatment(node, options.scheme()) == Treatment.INT8) {
        tensors.add(node.input(0).name());
        if (node.is(Onnx.CONV)) {
          tensors.add(node.output(0).name());
        }
      }
    }
    Path reference = scratch.resolve("reference.onnx");
    ModelWriter.write(model, reference);
    Calibration.Result calibrated = Calibration.run(reference, tensors, calibration, heldOut, scratch);
    Map<String, QuantizationParameters> parameters = parameters(calibrated.histograms(), options);
    Set<Node> unobserved = new java.util.HashSet<>();
    for (Node node : candidates) {
      // An activation ORT never handed back (a type the exposure could not infer) has no range: that layer stays float.
      String missing = treatment(node, options.scheme()) != Treatment.INT8 ? null
          : !parameters.containsKey(node.input(0).name()) ? node.input(0).name()
          : node.is(Onnx.CONV) && !parameters.containsKey(node.output(0).name()) ? node.output(0).name() : null;
      if (missing != null) {
        unobserved.add(node);
        kept.putIfAbsent(node, "no calibration values were observed for " + Printable.quoted(missing));
      }
    }

    List<Int8Report.LayerError> layerErrors = new ArrayList<>();
    if (options.layerError()) {
      Set<Node> keptByDefault = Set.copyOf(kept.keySet());
      for (Node node : candidates) {
        Model single = ModelReader.read(reference);
        Node copy = single.graph().findNode(node.name());
        if (copy == null || unobserved.contains(node)) {
          continue;
        }
        Treatment treatment = treatment(node, options.scheme());
        Map<Node, Treatment> only = new LinkedHashMap<>();
        only.put(copy, treatment);
        apply(single, only, parameters);
        Path file = scratch.resolve("layer.onnx");
        ModelWriter.write(single, file);
        double error = parity(file, heldOut, calibrated.referenceOutputs()).values().stream()
            .mapToDouble(Double::doubleValue).max().orElse(0);
        layerErrors.add(new Int8Report.LayerError(node.name(), node.opType().key(), treatment.id(), error,
            keptByDefault.contains(node)));
        if (options.keepDefaults() && !kept.containsKey(node) && !(error <= LAYER_ERROR_LIMIT)) {
          kept.put(node, String.format(Locale.ROOT, "measured: quantized alone it adds %.3g of the output's scale "
              + "(layers over %.2g stay float)", error, LAYER_ERROR_LIMIT));
        }
      }
      layerErrors.sort(Comparator.comparingDouble(Int8Report.LayerError::addedError).reversed());
    }

    Map<Node, Treatment> plan = new LinkedHashMap<>();
    for (Node node : candidates) {
      if (!kept.containsKey(node)) {
        plan.put(node, treatment(node, options.scheme()));
      }
    }
    Map<Node, String> keptNames = kept;
    int[] qdq = apply(model, plan, parameters);
    Path quantizedFile = scratch.resolve("quantized.onnx");
    ModelWriter.write(model, quantizedFile);
    Map<String, Double> parity = parity(quantizedFile, heldOut, calibrated.referenceOutputs());
    Map<String, Integer> kernels = kernels(quantizedFile, scratch);

    Map<String, Int8Report.KeptLayer> floatKept = new LinkedHashMap<>();
    keptNames.forEach((node, reason) -> floatKept.put(node.name(), new Int8Report.KeptLayer(node.opType().key(), reason)));
    int int8 = (int) plan.values().stream().filter(treatment -> treatment == Treatment.INT8).count();
    int weightsOnly = plan.size() - int8;
    int floatNodes = (int) model.graph().nodes().stream()
        .filter(node -> !node.is(Onnx.QUANTIZE_LINEAR) && !node.is(Onnx.DEQUANTIZE_LINEAR)).count() - plan.size();
    List<String> notes = new ArrayList<>();
    if (!separate) {
      notes.add("no held-out calibration sets (fewer than 4 given): parity is measured on the calibration inputs themselves");
    }
    if (options.scheme() != Int8Options.Scheme.FULL && weightsOnly > 0) {
      notes.add("weights-only layers: ORT 1.22's CPU provider dequantizes their int8 weights at every run and computes "
          + "in float (no DQ→MatMul/Conv fusion for 8-bit weights): smaller, not faster");
    }
    Int8Report.CalibrationUsed used = new Int8Report.CalibrationUsed(source,
        calibration.stream().map(CalibrationSets.Set::name).toList(), heldOut.stream().map(CalibrationSets.Set::name).toList(),
        separate, tensors.size());
    return new Int8Report(options.scheme().id(), options.ranges().id(), options.signedActivations() ? "int8" : "uint8",
        int8, weightsOnly, floatNodes, qdq[0], qdq[1], bytesBefore, initializerBytes(model), used, floatKept, parity,
        kernels, layerErrors, notes);
  }

  /** Conv and MatMul nodes with constant weights, in graph order. */
  static List<Node> candidates(Model model) {
    List<Node> candidates = new ArrayList<>();
    for (Node node : model.graph().nodes()) {
      if (node.is(Onnx.CONV) && ConvQuantization.unsupported(node) == null
          || node.is(Onnx.MAT_MUL) && MatMulQuantization.unsupported(node) == null) {
        candidates.add(node);
      }
    }
    return candidates;
  }

  static Treatment treatment(Node node, Int8Options.Scheme scheme) {
    return switch (scheme) {
      case FULL -> Treatment.INT8;
      case HYBRID -> node.is(Onnx.CONV) ? Treatment.INT8 : Treatment.WEIGHTS_ONLY;
      case WEIGHTS -> Treatment.WEIGHTS_ONLY;
    };
  }

  /** Applies {@code plan} in graph order; answers the QuantizeLinear and DequantizeLinear counts added. */
  static int[] apply(Model model, Map<Node, Treatment> plan, Map<String, QuantizationParameters> parameters) {
    QdqEditor qdq = new QdqEditor(new GraphEditor(model.graph()), value -> {
      QuantizationParameters chosen = parameters.get(value.name());
      if (chosen == null) {
        throw new KilnException.ValidationFailed("int8: no calibration range for tensor " + Printable.quoted(value.name()));
      }
      return chosen;
    });
    for (Map.Entry<Node, Treatment> step : plan.entrySet()) {
      Node node = step.getKey();
      boolean conv = node.is(Onnx.CONV);
      if (step.getValue() == Treatment.INT8) {
        if (conv) {
          ConvQuantization.full(node, qdq);
        } else {
          MatMulQuantization.full(node, qdq);
        }
      } else if (conv) {
        ConvQuantization.weightsOnly(node, qdq);
      } else {
        MatMulQuantization.weightsOnly(node, qdq);
      }
    }
    return new int[] {qdq.quantizeNodes(), qdq.dequantizeNodes()};
  }

  static Map<String, QuantizationParameters> parameters(Map<String, ValueHistogram> histograms, Int8Options options) {
    Map<String, QuantizationParameters> parameters = new TreeMap<>();
    histograms.forEach((name, histogram) -> {
      double[] range = options.ranges() == Int8Options.RangeMethod.MINMAX
          ? new double[] {histogram.min(), histogram.max()}
          : histogram.percentileRange(PERCENTILE);
      parameters.put(name, QuantizationParameters.forRange(range[0], range[1], options.signedActivations()));
    });
    return parameters;
  }

  /**
   * With the per-layer measurement on, a layer that alone adds more than this share of an output's scale stays float:
   * on the tiny pipeline it separates the outliers (conv_out 0.21, the VAE encoder's conv_out 0.32, the VAE decoder's
   * last upsampler 0.16) from the bulk of the convs (0.004–0.03).
   */
  public static final double LAYER_ERROR_LIMIT = 0.05;

  /** The percentile range keeps all but 1 value in 10⁴ per tail. */
  static final double PERCENTILE = 0.9999;

  /** max|candidate − fp32| / max|fp32| per output, the worst over the held-out sets, with ORT's optimizations on. */
  private static Map<String, Double> parity(Path candidate, List<CalibrationSets.Set> heldOut,
      List<Map<String, float[]>> references) {
    Map<String, Double> parity = new LinkedHashMap<>();
    try (OrtCpu session = new OrtCpu(candidate, OrtSession.SessionOptions.OptLevel.ALL_OPT, null)) {
      for (int index = 0; index < heldOut.size(); index++) {
        Map<String, float[]> actual = session.run(heldOut.get(index).feeds());
        references.get(index).forEach((name, expected) ->
            parity.merge(name, Metrics.scaleRelativeError(expected, actual.get(name)), Math::max));
      }
    }
    return parity;
  }

  /** The int8 ops in ORT's own optimized graph of the quantized model (its QDQ fusions run at the extended level). */
  static Map<String, Integer> kernels(Path quantized, Path scratch) {
    Path optimized = scratch.resolve("ort-optimized.onnx");
    try (OrtCpu session = new OrtCpu(quantized, OrtSession.SessionOptions.OptLevel.EXTENDED_OPT, optimized)) {
      // Creating the session writes the optimized graph.
    }
    Map<String, Integer> counts = new TreeMap<>();
    for (Node node : ModelReader.read(optimized).graph().nodes()) {
      if (KERNELS.stream().anyMatch(node::is)) {
        counts.merge(node.opType().key(), 1, Integer::sum);
      }
    }
    return counts;
  }

  private static long initializerBytes(Model model) {
    long bytes = 0;
    for (Value value : model.graph().initializers()) {
      bytes += value.initializer().byteSize();
    }
    return bytes;
  }

}
