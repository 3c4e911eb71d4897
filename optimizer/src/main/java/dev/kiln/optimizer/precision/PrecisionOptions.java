package dev.kiln.optimizer.precision;

import dev.kiln.common.KilnException;
import dev.kiln.optimizer.quantize.Int8Options;
import dev.kiln.optimizer.quantize.Int8Quantization;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Set;

/**
 * What {@code kiln optimize --precision} asks for.
 *
 * @param mode fp32 (no change), fp16 (every float node that can), mixed (measured: see {@link MixedPrecision})
 * @param calibration a folder of test_data_set_N (for a pipeline: one such folder per component sub-folder name);
 *     null = the test_data_set_N folders next to each model
 * @param tolerance mixed: the largest accepted max|fp16 − fp32| / max|fp32| per output
 * @param int8 int8: scheme, range method and activation type ({@link Int8Quantization})
 */
public record PrecisionOptions(Mode mode, Fp16Conversion.Options conversion, Path calibration, double tolerance,
    Int8Options int8) {
  public enum Mode {
    FP32, FP16, MIXED, INT8;

    public String id() {
      return name().toLowerCase(Locale.ROOT);
    }

    public static Mode parse(String text) {
      for (Mode mode : values()) {
        if (mode.id().equals(text)) {
          return mode;
        }
      }
      throw new KilnException.BadInput("--precision " + text + ": expected fp32, fp16, mixed or int8");
    }
  }

  public static final double DEFAULT_TOLERANCE = 1e-2;
  public static final PrecisionOptions FP32 = new PrecisionOptions(Mode.FP32, Fp16Conversion.Options.defaults(), null,
      DEFAULT_TOLERANCE);

  public PrecisionOptions(Mode mode, Fp16Conversion.Options conversion, Path calibration, double tolerance) {
    this(mode, conversion, calibration, tolerance, Int8Options.DEFAULT);
  }

  public PrecisionOptions {
    int8 = int8 == null ? Int8Options.DEFAULT : int8;
    if (!(tolerance > 0)) {
      throw new KilnException.BadInput("--fp16-tolerance " + tolerance + ": must be a positive number");
    }
  }

  public static PrecisionOptions of(Mode mode, boolean keepIoTypes, Set<String> blockOps, Set<String> blockNodes,
      Path calibration, double tolerance) {
    return new PrecisionOptions(mode, new Fp16Conversion.Options(keepIoTypes, blockOps, blockNodes), calibration, tolerance);
  }

  public PrecisionOptions withInt8(Int8Options int8) {
    return new PrecisionOptions(mode, conversion, calibration, tolerance, int8);
  }
}
