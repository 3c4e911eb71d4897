package dev.kiln.optimizer.specialize;

import dev.kiln.optimizer.passes.ConstantFolding;
import java.util.Map;
import java.util.TreeMap;

/**
 * What {@code kiln optimize} bakes into a model besides the target's fusions: the constant-folding size limit
 * ({@code --fold-limit}) and the symbolic dims bound to sizes ({@code --static}).
 *
 * @param foldLimitBytes the largest tensor constant folding makes or reads
 * @param staticDims symbolic dim name → size; empty keeps every dynamic axis
 */
public record Specialization(long foldLimitBytes, Map<String, Long> staticDims) {
  public static final Specialization NONE = new Specialization(ConstantFolding.DEFAULT_LIMIT_BYTES, Map.of());

  public Specialization {
    staticDims = java.util.Collections.unmodifiableMap(new TreeMap<>(staticDims));
  }

  public Specialization withFoldLimit(long bytes) {
    return new Specialization(bytes, staticDims);
  }

  public Specialization withStaticDims(Map<String, Long> dims) {
    return new Specialization(foldLimitBytes, dims);
  }

  public boolean isStatic() {
    return !staticDims.isEmpty();
  }
}
