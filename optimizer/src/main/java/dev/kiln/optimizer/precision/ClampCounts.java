package dev.kiln.optimizer.precision;

import dev.kiln.graph.Tensor;
import java.util.AbstractMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Values clamped per converted initializer (name → count, only those with any, by name), as the report shows them.
 * The conversion itself counts while it converts, which for a streamed weight happens when the model is written,
 * after the report was made; so the counts are gathered when first read: a tensor converted by then answers its
 * recorded count, one never converted (the model was not written) is counted from its source now. Either way a
 * weight is read once per use, never an extra time for the report. Read it after writing the model.
 */
final class ClampCounts extends AbstractMap<String, Long> {
  private final Map<String, Tensor> sources = new ConcurrentHashMap<>();
  private final Map<String, Long> recorded = new ConcurrentHashMap<>();

  /** {@code name}'s float16 conversion reads {@code source}. */
  void expect(String name, Tensor source) {
    sources.put(name, source);
  }

  /** A conversion of {@code name} clamped {@code count} values (every conversion of a tensor counts the same). */
  void record(String name, long count) {
    recorded.put(name, count);
  }

  /** How many expected conversions have not run yet (each would be counted by a pass of its own when read). */
  int uncounted() {
    return (int) sources.keySet().stream().filter(name -> !recorded.containsKey(name)).count();
  }

  private Map<String, Long> counts() {
    Map<String, Long> counts = new TreeMap<>();
    sources.forEach((name, source) -> {
      long count = recorded.computeIfAbsent(name, key -> HalfTensors.clampedCount(source));
      if (count > 0) {
        counts.put(name, count);
      }
    });
    return counts;
  }

  @Override
  public Set<Entry<String, Long>> entrySet() {
    return java.util.Collections.unmodifiableMap(counts()).entrySet();
  }
}
