package dev.kiln.optimizer.quantize;

import dev.kiln.graph.Model;
import dev.kiln.graph.ModelReader;
import dev.kiln.graph.ModelWriter;
import dev.kiln.graph.Value;
import dev.kiln.optimizer.precision.CalibrationSets;
import dev.kiln.optimizer.precision.MixedPrecision;
import dev.kiln.optimizer.precision.OrtCpu;
import dev.kiln.validator.lowering.Lowering;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Runs the float32 graph on ORT's CPU provider with the activations to quantize exposed as outputs (the precision
 * stage's calibration machinery), over the calibration sets, into one histogram per tensor; the same session gives
 * the float32 outputs of the held-out sets, the reference for parity.
 */
final class Calibration {
  private Calibration() {}

  record Result(Map<String, ValueHistogram> histograms, List<Map<String, float[]>> referenceOutputs) {}

  static Result run(Path reference, Set<String> tensors, List<CalibrationSets.Set> calibration,
      List<CalibrationSets.Set> heldOut, Path scratch) {
    Model exposed = ModelReader.read(reference);
    List<String> outputNames = exposed.graph().outputs().stream().map(Value::name).toList();
    MixedPrecision.expose(exposed, tensors);
    Lowering.forOrtCpu().lower(exposed);
    Path file = scratch.resolve("calibrate.onnx");
    ModelWriter.write(exposed, file);
    Map<String, ValueHistogram> histograms = new HashMap<>();
    List<Map<String, float[]>> references = new ArrayList<>();
    try (OrtCpu session = new OrtCpu(file)) {
      for (CalibrationSets.Set set : calibration) {
        Map<String, float[]> values = session.run(set.feeds());
        for (String name : tensors) {
          float[] observed = values.get(name);
          if (observed == null && set.feeds().get(name) != null && set.feeds().get(name).values() instanceof float[] fed) {
            observed = fed;
          }
          if (observed != null) {
            histograms.computeIfAbsent(name, key -> new ValueHistogram()).add(observed);
          }
        }
      }
      for (CalibrationSets.Set set : heldOut) {
        Map<String, float[]> values = session.run(set.feeds());
        Map<String, float[]> outputs = new LinkedHashMap<>();
        outputNames.forEach(name -> outputs.put(name, values.get(name)));
        references.add(outputs);
      }
    }
    return new Result(histograms, references);
  }
}
