package dev.kiln.optimizer;

import com.fasterxml.jackson.annotation.JsonProperty;
import dev.kiln.optimizer.precision.PrecisionReport;
import java.util.List;
import java.util.Map;

/**
 * What {@link Optimizer} did, per component: node counts and op histograms before and after (keys as in
 * {@code kiln inspect --json}: "Add", "com.microsoft:MultiHeadAttention"), per-rule applied counts,
 * rejection reasons and near misses, per-pass change counts, wall time; and warnings about what passed through
 * unchecked (nodes in domains Kiln has no schema for), one line each.
 */
public record OptimizationReport(String target, List<ComponentReport> components, long wallMillis, List<String> warnings,
    Map<String, PrecisionReport> precision) {

  public OptimizationReport {
    warnings = List.copyOf(warnings);
    precision = precision == null ? Map.of() : java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(precision));
  }

  public OptimizationReport(String target, List<ComponentReport> components, long wallMillis, List<String> warnings) {
    this(target, components, wallMillis, warnings, Map.of());
  }

  public OptimizationReport(String target, List<ComponentReport> components, long wallMillis) {
    this(target, components, wallMillis, List.of());
  }

  /** Marks the JSON as Kiln's, so that a report file is replaced by the next run without --overwrite. */
  @JsonProperty("producer")
  public String producer() {
    return "kiln optimize";
  }

  public record ComponentReport(String path, String component, String target, int nodesBefore, int nodesAfter,
      Map<String, Integer> opsBefore, Map<String, Integer> opsAfter, Map<String, RuleReport> rules,
      Map<String, Integer> passes, long wallMillis) {}

  /**
   * @param rejected why matched sites were declined (reason → count)
   * @param nearMisses candidates the pattern did not match: first failing edge → node names, in graph order
   */
  public record RuleReport(int applied, Map<String, Integer> rejected, Map<String, List<String>> nearMisses) {}

  public ComponentReport component(String id) {
    for (ComponentReport report : components) {
      if (report.component().equals(id)) {
        return report;
      }
    }
    throw new IllegalArgumentException("no component " + id + " in this report");
  }
}
