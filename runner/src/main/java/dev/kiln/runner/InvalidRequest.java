package dev.kiln.runner;

import dev.kiln.common.KilnException;

/**
 * A {@link GenerationRequest} field that cannot be honoured, named by the request's own field name
 * ({@code batch}, {@code clipSkip}, ...) and with the valid range; a front end (the CLI) maps the field to its
 * own spelling ({@code --batch}, {@code --clip-skip}) through {@link #field} and {@link #problem}.
 */
public final class InvalidRequest extends KilnException.BadInput {
  private static final long serialVersionUID = 1L;
  private final String field;
  private final String problem;

  public InvalidRequest(String field, String problem) {
    super(field + " " + problem);
    this.field = field;
    this.problem = problem;
  }

  /** The GenerationRequest component at fault. */
  public String field() {
    return field;
  }

  /** What is wrong, without the field name: "must be between 1 and 1000, got 100000". */
  public String problem() {
    return problem;
  }
}
