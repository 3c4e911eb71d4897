package dev.kiln.optimizer.engine;

import java.util.List;

/** What one driver run did: statistics per rule in rule order, and how many sweeps it took. */
public record DriverReport(List<RuleStats> rules, int iterations, boolean reachedFixpoint) {
  public int applied(String rule) {
    for (RuleStats stats : rules) {
      if (stats.rule().equals(rule)) {
        return stats.applied();
      }
    }
    throw new IllegalArgumentException("no rule '" + rule + "' in this run");
  }

  public RuleStats stats(String rule) {
    for (RuleStats stats : rules) {
      if (stats.rule().equals(rule)) {
        return stats;
      }
    }
    throw new IllegalArgumentException("no rule '" + rule + "' in this run");
  }
}
