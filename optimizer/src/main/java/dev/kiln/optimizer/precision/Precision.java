package dev.kiln.optimizer.precision;

import dev.kiln.common.KilnException;
import dev.kiln.graph.Model;
import dev.kiln.graph.Verifier;
import dev.kiln.optimizer.quantize.Int8Quantization;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/** The precision stage of {@code kiln optimize}: run last, after every fusion, on one component. */
public final class Precision {
  private Precision() {}

  /**
   * Converts {@code model} as {@code options} ask; null for fp32.
   *
   * @param source the model file it was read from (its folder may hold test_data_set_N calibration inputs)
   * @param componentFolder for a pipeline component, its sub-folder name (text_encoder, unet...); else null
   */
  public static PrecisionReport apply(Model model, Path source, String componentFolder, PrecisionOptions options) {
    return apply(model, source, componentFolder, options, null);
  }

  /**
   * As {@link #apply(Model, Path, String, PrecisionOptions)}; a pipeline component with {@code recorded} sets (see
   * {@link #pipelineCalibration}) calibrates on its held-in sets and verifies on its held-out ones.
   */
  public static PrecisionReport apply(Model model, Path source, String componentFolder, PrecisionOptions options,
      PipelineCalibration.Capture recorded) {
    PrecisionReport report;
    if (options.mode() == PrecisionOptions.Mode.MIXED && recorded != null && componentFolder != null) {
      PipelineCalibration.Sets sets = recorded.component(componentFolder);
      if (sets == null) {
        throw new KilnException.BadInput(source + ": the runner never called " + componentFolder + " while calibrating "
            + "(--precision mixed needs real inputs for it: --calibration DIR in the ONNX test-data layout)");
      }
      report = MixedPrecision.convert(model, fitting(sets.heldIn(), model, source), fitting(sets.heldOut(), model, source),
          options.conversion(), options.tolerance());
      List<String> notes = new java.util.ArrayList<>(report.notes());
      notes.add(0, recorded.describe());
      report = report.withNotes(notes);
    } else if (options.mode() == PrecisionOptions.Mode.INT8 && recorded != null && componentFolder != null) {
      PipelineCalibration.Sets sets = recorded.component(componentFolder);
      if (sets == null) {
        throw new KilnException.BadInput(source + ": the runner never called " + componentFolder + " while calibrating "
            + "(--precision int8 needs real inputs for it: --calibration DIR in the ONNX test-data layout)");
      }
      report = PrecisionReport.ofInt8(Int8Quantization.quantize(model, fitting(sets.heldIn(), model, source),
          fitting(sets.heldOut(), model, source), recorded.describe(), options.int8(), options.conversion().blockNodes()));
    } else {
      report = switch (options.mode()) {
        case FP32 -> null;
        case FP16 -> Fp16Conversion.convert(model, Map.of(), options.conversion());
        case MIXED -> MixedPrecision.convert(model, calibrationSets(model, source, componentFolder, options),
            options.conversion(), options.tolerance());
        case INT8 -> {
          List<CalibrationSets.Set> sets = calibrationSets(model, source, componentFolder, options);
          List<List<CalibrationSets.Set>> split = Int8Quantization.split(sets);
          yield PrecisionReport.ofInt8(Int8Quantization.quantize(model, split.get(0), split.get(1),
              calibrationSource(source, componentFolder, options), options.int8(), options.conversion().blockNodes()));
        }
      };
    }
    if (report != null) {
      Verifier.verify(model);
    }
    return report;
  }

  /**
   * For {@code --precision mixed} or {@code int8} on a pipeline folder without {@code --calibration}: real inputs recorded from the
   * runner (see {@link PipelineCalibration}); null when not needed. A folder bound by {@code --static} (image-level
   * {@code height}/{@code width}) calibrates at that one size, the only one its components accept.
   */
  public static PipelineCalibration.Capture pipelineCalibration(Path pipeline, PrecisionOptions options,
      Map<String, Long> staticDims, PipelineCalibration.Listener listener) {
    boolean calibrated = options.mode() == PrecisionOptions.Mode.MIXED || options.mode() == PrecisionOptions.Mode.INT8;
    if (!calibrated || options.calibration() != null) {
      return null;
    }
    PipelineCalibration.Options calibration = PipelineCalibration.Options.defaults();
    if (options.mode() == PrecisionOptions.Mode.INT8) {
      // int8 keeps the calibration its gates and README numbers were measured with: the two larger default sizes, one
      // noise each. The smallest size is where float16's rounding error is largest (mixed verifies there); whether
      // int8's ranges and gates should cover it too is int8's question (tiny-sd, hybrid, held-out parity with all three
      // sizes: UNet 0.040 against 0.031, VAE decoder 0.133 against 0.148, VAE encoder 0.032 against 0.037).
      List<PipelineCalibration.Size> sizes = PipelineCalibration.defaultSizes(dev.kiln.runner.pipeline.PipelineFolder.open(pipeline));
      calibration = calibration.withSizes(sizes.subList(0, Math.min(2, sizes.size()))).withSmallestSeeds(1);
    }
    if (staticDims.containsKey("height") || staticDims.containsKey("width")) {
      List<PipelineCalibration.Size> sizes = PipelineCalibration.defaultSizes(
          dev.kiln.runner.pipeline.PipelineFolder.open(pipeline));
      long width = staticDims.getOrDefault("width", (long) sizes.get(0).width());
      long height = staticDims.getOrDefault("height", (long) sizes.get(0).height());
      calibration = calibration.withSizes(List.of(new PipelineCalibration.Size(Math.toIntExact(width), Math.toIntExact(height))));
    }
    return PipelineCalibration.capture(pipeline, calibration, listener);
  }

  /** The sets whose shapes the (possibly specialized) model accepts; none is an error naming the first misfit. */
  private static List<CalibrationSets.Set> fitting(List<CalibrationSets.Set> sets, Model model, Path source) {
    List<CalibrationSets.Set> fitting = sets.stream().filter(set -> CalibrationSets.fits(set, model)).toList();
    if (fitting.isEmpty() && !sets.isEmpty()) {
      throw new KilnException.BadInput(source + ": no recorded calibration input fits the model's inputs ("
          + sets.get(0).name() + ": " + CalibrationSets.describe(sets.get(0)) + ")");
    }
    return fitting;
  }

  private static Path realParent(Path source) {
    try {
      return source.toRealPath().getParent();
    } catch (java.io.IOException e) {
      return source.toAbsolutePath().getParent();
    }
  }

  private static String calibrationSource(Path source, String componentFolder, PrecisionOptions options) {
    if (options.calibration() == null) {
      return realParent(source).toString();
    }
    return (componentFolder == null ? options.calibration() : options.calibration().resolve(componentFolder)).toString();
  }

  private static List<CalibrationSets.Set> calibrationSets(Model model, Path source, String componentFolder,
      PrecisionOptions options) {
    // A pipeline component may be a link to its model elsewhere; its test data sit beside the real file.
    Path folder = realParent(source);
    if (options.calibration() != null) {
      if (!Files.isDirectory(options.calibration())) {
        throw new KilnException.BadInput("--calibration " + options.calibration() + ": no such folder");
      }
      folder = componentFolder == null ? options.calibration() : options.calibration().resolve(componentFolder);
    }
    List<CalibrationSets.Set> sets = CalibrationSets.read(folder, model);
    if (sets.isEmpty()) {
      throw new KilnException.BadInput(folder + ": no test_data_set_N folders to calibrate " + source + " with "
          + "(--precision " + options.mode().id() + " needs real inputs: --calibration DIR in the ONNX test-data layout)");
    }
    return sets;
  }
}
