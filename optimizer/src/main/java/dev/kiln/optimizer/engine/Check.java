package dev.kiln.optimizer.engine;

import java.util.function.Supplier;

/** The verdict of a rule on one matched site: ok, or the reason it does not apply (for {@code --explain}). */
public final class Check {
  private static final Check OK = new Check(true, "");
  private final boolean passed;
  private final String reason;

  private Check(boolean passed, String reason) {
    this.passed = passed;
    this.reason = reason;
  }

  public static Check ok() {
    return OK;
  }

  public static Check fail(String reason) {
    return new Check(false, reason);
  }

  /** Ok when {@code condition} holds, else fail with {@code reason}. */
  public static Check require(boolean condition, String reason) {
    return condition ? OK : fail(reason);
  }

  public boolean passed() {
    return passed;
  }

  public String reason() {
    return reason;
  }

  /** This failure, or else the next check. */
  public Check and(Supplier<Check> next) {
    return passed ? next.get() : this;
  }

  @Override
  public String toString() {
    return passed ? "ok" : "fail(" + reason + ")";
  }
}
