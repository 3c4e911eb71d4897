package dev.kiln.validator.parity;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * How far a candidate output is from the reference: max absolute error, max error relative to the output's
 * scale (max |reference|; an elementwise ratio explodes near zero and says nothing), mean absolute error,
 * cosine similarity, and NaN/Inf counts on both sides.
 */
public record Metrics(long elements, double maxAbs, double maxRelative, double meanAbs, double cosine, double scale,
    long candidateNonFinite, long referenceNonFinite) {

  /**
   * max|reference − candidate| / max|reference| (scale floored at 1e-6); a NaN difference, or arrays that do not pair,
   * give infinity. The one number the optimizer's, exporter's and precision's parity checks compare to a tolerance.
   */
  public static double scaleRelativeError(float[] reference, float[] candidate) {
    if (reference == null || candidate == null || reference.length != candidate.length) {
      return Double.POSITIVE_INFINITY;
    }
    double scale = 1e-6;
    double worst = 0;
    for (int i = 0; i < reference.length; i++) {
      scale = Math.max(scale, Math.abs(reference[i]));
      double difference = Math.abs((double) reference[i] - candidate[i]);
      worst = Math.max(worst, Double.isNaN(difference) ? Double.POSITIVE_INFINITY : difference);
    }
    return worst / scale;
  }

  /** The worst {@link #scaleRelativeError} over outputs paired by name; an output missing from {@code actual} is infinite. */
  public static double worstScaleRelativeError(Map<String, float[]> expected, Map<String, float[]> actual) {
    double worst = 0;
    for (Map.Entry<String, float[]> entry : expected.entrySet()) {
      worst = Math.max(worst, scaleRelativeError(entry.getValue(), actual.get(entry.getKey())));
    }
    return worst;
  }

  public static Metrics of(float[] reference, float[] candidate) {
    double scale = 0;
    double maxAbs = 0;
    double sumAbs = 0;
    double dot = 0;
    double normReference = 0;
    double normCandidate = 0;
    long candidateBad = 0;
    long referenceBad = 0;
    for (int i = 0; i < reference.length; i++) {
      double r = reference[i];
      double c = candidate[i];
      boolean referenceFinite = Double.isFinite(r);
      boolean candidateFinite = Double.isFinite(c);
      if (!referenceFinite) {
        referenceBad++;
      }
      if (!candidateFinite) {
        candidateBad++;
      }
      if (!referenceFinite || !candidateFinite) {
        continue;
      }
      scale = Math.max(scale, Math.abs(r));
      double difference = Math.abs(r - c);
      maxAbs = Math.max(maxAbs, difference);
      sumAbs += difference;
      dot += r * c;
      normReference += r * r;
      normCandidate += c * c;
    }
    double cosine = normReference == 0 && normCandidate == 0 ? 1 : dot / Math.sqrt(normReference * normCandidate);
    double relative = maxAbs / Math.max(scale, 1e-12);
    return new Metrics(reference.length, maxAbs, relative, reference.length == 0 ? 0 : sumAbs / reference.length,
        Double.isNaN(cosine) ? 0 : cosine, scale, candidateBad, referenceBad);
  }

  /** Within tolerance: |error| <= atol + rtol * scale everywhere, and no NaN/Inf the reference does not have. */
  public boolean within(double atol, double rtol) {
    return candidateNonFinite <= referenceNonFinite && maxAbs <= atol + rtol * scale;
  }

  public Map<String, Object> asMap() {
    Map<String, Object> map = new LinkedHashMap<>();
    map.put("elements", elements);
    map.put("maxAbs", round(maxAbs));
    map.put("maxRelative", round(maxRelative));
    map.put("meanAbs", round(meanAbs));
    map.put("cosine", round(cosine));
    map.put("scale", round(scale));
    map.put("nonFinite", candidateNonFinite);
    map.put("referenceNonFinite", referenceNonFinite);
    return map;
  }

  /** Six significant digits: reports stay readable and byte-identical across runs. */
  static double round(double value) {
    if (value == 0 || !Double.isFinite(value)) {
      return value;
    }
    return Double.parseDouble(String.format(java.util.Locale.ROOT, "%.6g", value));
  }
}
