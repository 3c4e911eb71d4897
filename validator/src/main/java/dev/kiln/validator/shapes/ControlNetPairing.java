package dev.kiln.validator.shapes;

import dev.kiln.common.KilnException;
import dev.kiln.graph.Model;
import dev.kiln.graph.ModelReader;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Value;
import dev.kiln.graph.infer.ShapeInference;
import dev.kiln.validator.ComponentKind;
import dev.kiln.validator.Names;
import dev.kiln.validator.report.CheckResult;
import dev.kiln.validator.report.ComponentReport;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A ControlNet and the UNet it feeds must agree residual by residual: the same count (one per down-block skip
 * sample, then the mid block's) and, at every size the shape proof covers, each ControlNet output's shape equal to
 * the shape the UNet adds that residual to. A pair that disagrees would fail only at generation time, inside ONNX
 * Runtime, on the first step; here it is a failed check naming the output and the input.
 */
public final class ControlNetPairing {
  public static final String CHECK = "controlnet-residuals";

  private ControlNetPairing() {}

  public static ComponentReport check(Path controlnetFile, Path unetFile, SizeSpec spec, boolean imageUnits) {
    ComponentReport report = new ComponentReport("controlnet+unet", controlnetFile + " -> " + unetFile, "pairing", null);
    Model controlnet = ModelReader.read(controlnetFile);
    Model unet = ModelReader.read(unetFile);
    List<Value> outputs = residualOutputs(controlnet);
    List<Value> inputs = ResidualInputs.residualInputs(unet);
    if (outputs.isEmpty()) {
      report.add(CheckResult.fail(CHECK, null, null, controlnetFile + ": the ControlNet has no " + ResidualInputs.DOWN_OUTPUT
          + "K / " + ResidualInputs.MID_OUTPUT + " outputs", null));
      return report;
    }
    if (inputs.isEmpty()) {
      report.add(CheckResult.fail(CHECK, null, null, unetFile + ": the UNet has no " + ResidualInputs.DOWN_INPUT + "K / "
          + ResidualInputs.MID_INPUT + " inputs for the ControlNet's " + outputs.size() + " residual outputs", null));
      return report;
    }
    String mismatch = countMismatch(outputs, inputs);
    if (mismatch != null) {
      report.add(CheckResult.fail(CHECK, null, null, mismatch, Map.of("outputs", outputs.size(), "inputs", inputs.size())));
      return report;
    }
    InputBinding controlnetBinding = new InputBinding(controlnet, ComponentKind.CONTROLNET, imageUnits);
    InputBinding unetBinding = new InputBinding(unet, ComponentKind.UNET, imageUnits);
    Map<String, String> refused = new LinkedHashMap<>();
    List<Size> sizes = unetBinding.sizes(spec, refused);
    for (Size size : sizes) {
      String problem = null;
      String failedOutput = null;
      try {
        ShapeInference produced = ShapeInference.of(controlnet, controlnetBinding.concreteInputs(size));
        Map<Value, Shape> taken = unetBinding.concreteInputs(size);
        for (int index = 0; index < outputs.size() && problem == null; index++) {
          Shape made = produced.shape(outputs.get(index));
          Shape wanted = taken.get(inputs.get(index));
          if (made == null || !made.isFullyKnown()) {
            problem = "ControlNet output " + Names.quote(outputs.get(index).name()) + " has no inferable shape at " + size.label();
          } else if (wanted == null || !wanted.isFullyKnown()) {
            problem = "UNet input " + Names.quote(inputs.get(index).name()) + " has no known shape at " + size.label();
          } else if (!made.equals(wanted)) {
            problem = "ControlNet output " + Names.quote(outputs.get(index).name()) + " is " + made + " but UNet input "
                + Names.quote(inputs.get(index).name()) + " is added to a skip sample of " + wanted + " at " + size.label();
          }
          if (problem != null) {
            failedOutput = outputs.get(index).name();
          }
        }
      } catch (KilnException.BadInput e) {
        problem = e.getMessage();
      }
      if (problem == null) {
        report.add(CheckResult.pass(CHECK, size.label(), null, outputs.size() + " residuals match the UNet's skip samples",
            Map.of("residuals", outputs.size())));
      } else {
        report.add(CheckResult.fail(CHECK, size.label(), failedOutput, problem, null));
      }
    }
    refused.forEach((label, problem) -> report.add(CheckResult.fail(CHECK, label, null, problem, null)));
    return report;
  }

  /** Null when every output has its input and the other way round; else which one lacks its partner. */
  private static String countMismatch(List<Value> outputs, List<Value> inputs) {
    java.util.Set<String> inputNames = new java.util.HashSet<>();
    inputs.forEach(input -> inputNames.add(input.name()));
    java.util.Set<String> expectedInputs = new java.util.HashSet<>();
    String counts = " (the ControlNet has " + outputs.size() + " residual outputs, the UNet " + inputs.size() + " residual inputs)";
    for (Value output : outputs) {
      String partner = partnerName(output.name());
      expectedInputs.add(partner);
      if (!inputNames.contains(partner)) {
        return "ControlNet output " + Names.quote(output.name()) + " has no UNet input " + Names.quote(partner) + counts;
      }
    }
    for (Value input : inputs) {
      if (!expectedInputs.contains(input.name())) {
        return "UNet input " + Names.quote(input.name()) + " has no ControlNet output " + Names.quote(outputName(input.name())) + counts;
      }
    }
    return null;
  }

  private static String outputName(String input) {
    int index = ResidualInputs.index(input, ResidualInputs.DOWN_INPUT);
    return index >= 0 ? ResidualInputs.DOWN_OUTPUT + index : ResidualInputs.MID_OUTPUT;
  }

  /** The ControlNet's residual outputs: the down-block ones by index, then the mid block's. */
  static List<Value> residualOutputs(Model model) {
    List<Value> downs = new ArrayList<>();
    Value mid = null;
    for (Value output : model.graph().outputs()) {
      if (ResidualInputs.index(output.name(), ResidualInputs.DOWN_OUTPUT) >= 0) {
        downs.add(output);
      } else if (output.name().equals(ResidualInputs.MID_OUTPUT)) {
        mid = output;
      }
    }
    downs.sort(Comparator.comparingInt(value -> ResidualInputs.index(value.name(), ResidualInputs.DOWN_OUTPUT)));
    if (mid != null) {
      downs.add(mid);
    }
    return downs;
  }

  private static String partnerName(String output) {
    int index = ResidualInputs.index(output, ResidualInputs.DOWN_OUTPUT);
    return index >= 0 ? ResidualInputs.DOWN_INPUT + index : ResidualInputs.MID_INPUT;
  }
}
