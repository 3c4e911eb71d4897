package dev.kiln.validator.report;

import com.fasterxml.jackson.annotation.JsonInclude;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Everything checked for one model (one component of a pipeline). */
@JsonInclude(JsonInclude.Include.NON_EMPTY)
public final class ComponentReport {
  private final String name;
  private final String path;
  private final String kind;
  private final String reference;
  private final List<CheckResult> checks = new ArrayList<>();
  private final List<Divergence> divergences = new ArrayList<>();
  private final Map<String, double[]> errorSamples = new LinkedHashMap<>();
  private final Map<String, Object> summary = new LinkedHashMap<>();

  public ComponentReport(String name, String path, String kind, String reference) {
    this.name = name;
    this.path = path;
    this.kind = kind;
    this.reference = reference;
  }

  public String getName() {
    return name;
  }

  public String getPath() {
    return path;
  }

  public String getKind() {
    return kind;
  }

  public String getReference() {
    return reference;
  }

  public List<CheckResult> getChecks() {
    return checks;
  }

  public List<Divergence> getDivergences() {
    return divergences;
  }

  public Map<String, Object> getSummary() {
    return summary;
  }

  /** Per output, a sample of absolute errors for the HTML histograms (not in the JSON: it is bulky). */
  @com.fasterxml.jackson.annotation.JsonIgnore
  public Map<String, double[]> errorSamples() {
    return errorSamples;
  }

  public boolean isPassed() {
    return checks.stream().allMatch(CheckResult::passed);
  }

  public void add(CheckResult result) {
    checks.add(result);
  }
}
