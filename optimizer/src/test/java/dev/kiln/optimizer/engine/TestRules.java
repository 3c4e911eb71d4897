package dev.kiln.optimizer.engine;

import dev.kiln.graph.Value;
import java.util.function.BiFunction;
import java.util.function.Function;

/** Rules written inline by engine tests: a name, a pattern, an optional check and a rewrite. */
final class TestRules {
  private TestRules() {}

  static Rule rule(String name, Function<PatternBuilder, Pattern> pattern, BiFunction<Match, Builder, Value> rewrite) {
    return rule(name, pattern, match -> Check.ok(), rewrite);
  }

  static Rule rule(String name, Function<PatternBuilder, Pattern> pattern, Function<Match, Check> check,
      BiFunction<Match, Builder, Value> rewrite) {
    return new Rule() {
      @Override
      public String name() {
        return name;
      }

      @Override
      public Pattern pattern(PatternBuilder p) {
        return pattern.apply(p);
      }

      @Override
      public Check check(Match match) {
        return check.apply(match);
      }

      @Override
      public Value rewrite(Match match, Builder builder) {
        return rewrite.apply(match, builder);
      }
    };
  }
}
