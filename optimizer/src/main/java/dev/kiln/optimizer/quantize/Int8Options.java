package dev.kiln.optimizer.quantize;

import dev.kiln.common.KilnException;
import java.util.Locale;

/**
 * What {@code kiln optimize --precision int8} asks for.
 *
 * @param scheme which nodes get int8 arithmetic and which only int8 storage
 * @param ranges how an activation's calibration values become its quantization range
 * @param signedActivations int8 activations (s8s8 kernels) instead of uint8 (u8s8, the default: see {@link #DEFAULT})
 * @param keepDefaults keep the measured-sensitive layers float ({@link FloatKeptLayers}); off quantizes every candidate
 * @param layerError measure the per-layer added error (one ORT session per candidate layer); with keepDefaults, a
 *     layer over {@link Int8Quantization#LAYER_ERROR_LIMIT} then stays float too
 */
public record Int8Options(Scheme scheme, RangeMethod ranges, boolean signedActivations, boolean keepDefaults,
    boolean layerError) {

  /** Hybrid, MinMax ranges, uint8 activations, default kept layers: see the README's int8 section for the numbers. */
  public static final Int8Options DEFAULT = new Int8Options(Scheme.HYBRID, RangeMethod.MINMAX, false, true, false);

  public enum Scheme {
    /** int8 weights and activations for convolutions and projection MatMuls. */
    FULL,
    /** Full int8 convolutions, weights-only int8 for MatMuls (attention and feed-forward projections). */
    HYBRID,
    /** int8 weights dequantized to float before float convolutions and MatMuls: smaller, not faster. */
    WEIGHTS;

    public String id() {
      return name().toLowerCase(Locale.ROOT);
    }

    public static Scheme parse(String text) {
      for (Scheme scheme : values()) {
        if (scheme.id().equals(text)) {
          return scheme;
        }
      }
      throw new KilnException.BadInput("--int8-scheme " + text + ": expected full, hybrid or weights");
    }
  }

  public enum RangeMethod {
    /** The smallest and largest calibration value. */
    MINMAX,
    /** The 0.01th and 99.99th percentiles: outliers saturate instead of stretching every step. */
    PERCENTILE;

    public String id() {
      return name().toLowerCase(Locale.ROOT);
    }

    public static RangeMethod parse(String text) {
      for (RangeMethod method : values()) {
        if (method.id().equals(text)) {
          return method;
        }
      }
      throw new KilnException.BadInput("--int8-ranges " + text + ": expected minmax or percentile");
    }
  }

  public Int8Options withScheme(Scheme scheme) {
    return new Int8Options(scheme, ranges, signedActivations, keepDefaults, layerError);
  }

  public Int8Options withRanges(RangeMethod ranges) {
    return new Int8Options(scheme, ranges, signedActivations, keepDefaults, layerError);
  }

  public Int8Options withSignedActivations(boolean signed) {
    return new Int8Options(scheme, ranges, signed, keepDefaults, layerError);
  }

  public Int8Options withKeepDefaults(boolean keep) {
    return new Int8Options(scheme, ranges, signedActivations, keep, layerError);
  }

  public Int8Options withLayerError(boolean measure) {
    return new Int8Options(scheme, ranges, signedActivations, keepDefaults, measure);
  }
}
