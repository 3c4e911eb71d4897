package dev.kiln.runner.pipeline;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Wall time of every stage in milliseconds, in the order stages first ran; UNet steps are kept one by one. */
public final class StageTimings {
  private final Map<String, List<Double>> stages = new LinkedHashMap<>();

  public void add(String stage, long nanos) {
    stages.computeIfAbsent(stage, key -> new ArrayList<>()).add(nanos / 1e6);
  }

  public <T> T time(String stage, java.util.function.Supplier<T> work) {
    long start = System.nanoTime();
    try {
      return work.get();
    } finally {
      add(stage, System.nanoTime() - start);
    }
  }

  public Map<String, List<Double>> stages() {
    return stages;
  }

  public double total(String stage) {
    return stages.getOrDefault(stage, List.of()).stream().mapToDouble(Double::doubleValue).sum();
  }

  /** stage -> total ms, plus stage -> per-call list for repeated stages (the UNet steps). */
  public Map<String, Object> toJson() {
    Map<String, Object> json = new LinkedHashMap<>();
    for (Map.Entry<String, List<Double>> entry : stages.entrySet()) {
      json.put(entry.getKey() + "_ms", round(total(entry.getKey())));
      if (entry.getValue().size() > 1) {
        json.put(entry.getKey() + "_each_ms", entry.getValue().stream().map(StageTimings::round).toList());
      }
    }
    return json;
  }

  private static double round(double milliseconds) {
    return Math.round(milliseconds * 100) / 100.0;
  }
}
