package dev.kiln.optimizer.engine;

import dev.kiln.graph.Value;

/**
 * A rewrite: a pattern, a check, and the replacement. A rule never mutates the graph; the
 * {@link RewriteDriver} splices what {@link #rewrite} builds, removes what became dead, and counts.
 */
public interface Rule {
  /** Stable id used by profiles, {@code --disable} and {@code --explain} (kebab case, e.g. "layer-norm"). */
  String name();

  /** The pattern, built once; its outermost op is the site's root, whose output the rewrite replaces. */
  Pattern pattern(PatternBuilder p);

  /** Whether this matched site may be rewritten; a failure says why (shapes unknown, epsilon too large, ...). */
  default Check check(Match match) {
    return Check.ok();
  }

  /** Builds the replacement of the root's output. Further outputs may be replaced through {@link Builder#replace}. */
  Value rewrite(Match match, Builder builder);
}
