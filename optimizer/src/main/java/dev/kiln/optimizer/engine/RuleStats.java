package dev.kiln.optimizer.engine;

import java.util.Map;
import java.util.TreeMap;

/** Per rule: how many sites it rewrote, and why the sites it declined were declined (reason → count). */
public final class RuleStats {
  private final String rule;
  private int applied;
  private Map<String, Integer> rejections = new TreeMap<>();

  RuleStats(String rule) {
    this.rule = rule;
  }

  public String rule() {
    return rule;
  }

  public int applied() {
    return applied;
  }

  /** Distinct reasons (sorted) with the number of sites each declined, as of the final sweep. */
  public Map<String, Integer> rejections() {
    return java.util.Collections.unmodifiableMap(rejections);
  }

  void countApplied() {
    applied++;
  }

  void reject(String reason) {
    rejections.merge(reason, 1, Integer::sum);
  }

  void clearRejections() {
    rejections = new TreeMap<>();
  }
}
