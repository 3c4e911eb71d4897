package dev.kiln.optimizer.engine;

/** The name a pattern binds a matched node to ({@link Pattern.Op#as}); see {@link ValueKey}. */
public record NodeKey(String name) {
  @Override
  public String toString() {
    return name;
  }
}
