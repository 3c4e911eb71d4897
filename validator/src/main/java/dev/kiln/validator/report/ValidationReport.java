package dev.kiln.validator.report;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonPropertyOrder;
import java.util.ArrayList;
import java.util.List;

/** The whole run: candidate, reference, target and each component's checks. */
@JsonInclude(JsonInclude.Include.NON_NULL)
@JsonPropertyOrder({"passed", "candidate", "reference", "target", "checks", "failures", "components"})
public final class ValidationReport {
  private final String candidate;
  private final String reference;
  private final String target;
  private final List<ComponentReport> components = new ArrayList<>();

  public ValidationReport(String candidate, String reference, String target) {
    this.candidate = candidate;
    this.reference = reference;
    this.target = target;
  }

  public String getCandidate() {
    return candidate;
  }

  public String getReference() {
    return reference;
  }

  public String getTarget() {
    return target;
  }

  public List<ComponentReport> getComponents() {
    return components;
  }

  public boolean isPassed() {
    return components.stream().allMatch(ComponentReport::isPassed);
  }

  public int getChecks() {
    return components.stream().mapToInt(component -> component.getChecks().size()).sum();
  }

  public int getFailures() {
    return (int) components.stream().flatMap(component -> component.getChecks().stream())
        .filter(check -> !check.passed()).count();
  }

  /** 0 when every check passed, 1 when one failed (bad input never gets here: it throws). */
  public int exitCode() {
    return isPassed() ? 0 : 1;
  }

  /** The first failing check's message, for the one-line verdict. */
  public String firstFailure() {
    for (ComponentReport component : components) {
      for (CheckResult check : component.getChecks()) {
        if (!check.passed()) {
          return component.getName() + ": " + check.caseName() + ": " + check.message();
        }
      }
    }
    return null;
  }
}
