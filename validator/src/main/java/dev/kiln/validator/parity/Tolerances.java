package dev.kiln.validator.parity;

import java.util.Map;

/**
 * Pass when |candidate - reference| <= atol + rtol * scale everywhere (scale = the output's max |reference|);
 * {@code perOutput} overrides rtol by output name ({@code --tolerance OUT=RTOL}). Defaults: rtol 1e-3 and atol
 * 1e-5 for float32 candidates; fp16 candidates 2e-2 (float16 keeps 11 significant bits).
 */
public record Tolerances(Double atol, Double rtol, Map<String, Double> perOutput) {
  public static final Tolerances DEFAULTS = new Tolerances(null, null, Map.of());

  public double atol(boolean fp16) {
    return atol != null ? atol : fp16 ? 1e-3 : 1e-5;
  }

  public double rtol(String output, boolean fp16) {
    Double specific = perOutput.get(output);
    if (specific != null) {
      return specific;
    }
    return rtol != null ? rtol : fp16 ? 2e-2 : 1e-3;
  }
}
