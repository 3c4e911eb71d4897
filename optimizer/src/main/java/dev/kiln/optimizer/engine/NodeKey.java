package dev.kiln.optimizer.engine;

/** What a pattern binds a matched node to ({@link Pattern.Op#as}); a rule lists them as one enum, like {@link ValueKey}. */
public interface NodeKey {
  /** The binding's name (an enum constant's own name). */
  String name();
}
