package dev.kiln.optimizer.folding;

/**
 * An op cannot be evaluated on these constants: a case the evaluator does not cover (the value stays computed),
 * or inputs the op rejects (a Reshape that does not divide) — the message says which.
 */
public final class EvaluationException extends RuntimeException {
  public EvaluationException(String message) {
    super(message, null, false, false);
  }
}
