package dev.kiln.optimizer.engine;

/**
 * The name a pattern binds a value to ({@link PatternBuilder#input}, {@link PatternBuilder#constant}, ...), as one
 * constant a rule shares between {@code pattern}, {@code check} and {@code rewrite}: a misspelt key no longer
 * compiles, and a value key cannot be asked for a node.
 */
public record ValueKey(String name) {
  @Override
  public String toString() {
    return name;
  }
}
