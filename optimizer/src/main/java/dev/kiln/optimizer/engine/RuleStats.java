package dev.kiln.optimizer.engine;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Per rule: how many sites it rewrote, why the sites it declined were declined (reason → count), and its near
 * misses: candidates the root op accepted but the rest of the pattern did not (first failing edge → node names).
 */
public final class RuleStats {
  private final String rule;
  private int applied;
  private Map<String, Integer> rejections = new TreeMap<>();
  private Map<String, List<String>> nearMisses = new TreeMap<>();

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

  /** Distinct first failing edges (sorted) with the names of the candidate nodes, in graph order, as of the final sweep. */
  public Map<String, List<String>> nearMisses() {
    return java.util.Collections.unmodifiableMap(nearMisses);
  }

  void nearMiss(String edge, String nodeName) {
    nearMisses.computeIfAbsent(edge, key -> new ArrayList<>()).add(nodeName);
  }

  void countApplied() {
    applied++;
  }

  void reject(String reason) {
    rejections.merge(reason, 1, Integer::sum);
  }

  /** Forgets rejections and near misses: each sweep reports afresh, and the final one has the last word. */
  void clearRejections() {
    rejections = new TreeMap<>();
    nearMisses = new TreeMap<>();
  }
}
