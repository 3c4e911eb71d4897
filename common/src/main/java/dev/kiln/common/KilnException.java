package dev.kiln.common;

/**
 * The one exception family of Kiln. Messages name the file, the node, the op and what was expected;
 * the CLI maps the subtype to an exit code and prints the message alone, never a stack trace.
 */
public abstract class KilnException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  /**
   * The message is made one safe line here ({@link Printable#line}), so a node or tensor name with a newline or an
   * escape sequence cannot split or colour it wherever it is printed, by the CLI or by a library user.
   */
  protected KilnException(String message, Throwable cause) {
    super(Printable.line(message), cause);
  }

  /** The process exit code the CLI uses for this failure. */
  public abstract int exitCode();

  /** The user's input is wrong: a malformed file, a bad flag, a hostile path. Exit code 2. */
  public static class BadInput extends KilnException {
    private static final long serialVersionUID = 1L;

    public BadInput(String message) {
      super(message, null);
    }

    public BadInput(String message, Throwable cause) {
      super(message, cause);
    }

    @Override
    public int exitCode() {
      return 2;
    }
  }

  /** A well-formed model that Kiln cannot handle (an op without a schema, a layout it does not know). Exit code 2. */
  public static final class Unsupported extends KilnException {
    private static final long serialVersionUID = 1L;

    public Unsupported(String message) {
      super(message, null);
    }

    public Unsupported(String message, Throwable cause) {
      super(message, cause);
    }

    @Override
    public int exitCode() {
      return 2;
    }
  }

  /** A check ran and the model failed it (numeric parity, shape or EP support). Exit code 1. */
  public static final class ValidationFailed extends KilnException {
    private static final long serialVersionUID = 1L;

    public ValidationFailed(String message) {
      super(message, null);
    }

    @Override
    public int exitCode() {
      return 1;
    }
  }
}
