package dev.kiln.optimizer.engine;

/**
 * What a pattern binds a value to ({@link PatternBuilder#input}, {@link PatternBuilder#constant}, ...), shared by a
 * rule's {@code pattern}, {@code check} and {@code rewrite}: a misspelt key does not compile, and a value key cannot
 * be asked for a node. A rule lists its keys as one enum, {@code private enum Values implements ValueKey { X, BIAS }}.
 */
public interface ValueKey {
  /** The binding's name (an enum constant's own name). */
  String name();
}
