package dev.kiln.validator.report;

import com.fasterxml.jackson.annotation.JsonInclude;
import java.util.Map;

/**
 * One verdict: a check ("structure", "ep-support", "shapes", "parity") at one size (or none) for one output (or
 * none), with its message and numbers. One JUnit testcase each.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record CheckResult(String check, String size, String output, boolean passed, Boolean skipped, String message,
    Map<String, Object> metrics) {
  public static CheckResult pass(String check, String size, String output, String message, Map<String, Object> metrics) {
    return new CheckResult(check, size, output, true, null, message, metrics);
  }

  public static CheckResult fail(String check, String size, String output, String message, Map<String, Object> metrics) {
    return new CheckResult(check, size, output, false, null, message, metrics);
  }

  /** A check that could not run (nothing to compare with): not a failure, and shown as skipped, never as passed. */
  public static CheckResult skip(String check, String message) {
    return new CheckResult(check, null, null, true, true, message, null);
  }

  /** The JUnit testcase name: check, size and output joined. */
  public String caseName() {
    StringBuilder name = new StringBuilder(check);
    if (size != null) {
      name.append(" @ ").append(size);
    }
    if (output != null) {
      name.append(" : ").append(output);
    }
    return name.toString();
  }
}
