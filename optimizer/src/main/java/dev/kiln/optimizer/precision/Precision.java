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
    PrecisionReport report = switch (options.mode()) {
      case FP32 -> null;
      case FP16 -> Fp16Conversion.convert(model, Map.of(), options.conversion());
      case MIXED -> MixedPrecision.convert(model, calibrationSets(model, source, componentFolder, options),
          options.conversion(), options.tolerance());
      case INT8 -> PrecisionReport.ofInt8(Int8Quantization.quantize(model,
          calibrationSets(model, source, componentFolder, options), calibrationSource(source, componentFolder, options),
          options.int8()));
    };
    if (report != null) {
      Verifier.verify(model);
    }
    return report;
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
