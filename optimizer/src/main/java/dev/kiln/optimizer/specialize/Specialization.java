package dev.kiln.optimizer.specialize;

import dev.kiln.optimizer.passes.ConstantFolding;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * What {@code kiln optimize} bakes into a model besides the target's fusions: the constant-folding size limit
 * ({@code --fold-limit}), the symbolic dims bound to sizes ({@code --static}), and the text-encoder outputs kept
 * ({@code --clip-skip}, {@code --keep-output}).
 *
 * @param foldLimitBytes the largest tensor constant folding makes or reads
 * @param staticDims symbolic dim name → size; empty keeps every dynamic axis
 * @param clipSkip layers of CLIP skipped and baked in (diffusers' clip_skip), or null to keep every output
 * @param keepOutputs the outputs to keep (empty: all, or what the clip skip keeps)
 * @param sdxl whether a text encoder belongs to SDXL (penultimate state plus pooled), else SD 1.x/2.x (normed state)
 */
public record Specialization(long foldLimitBytes, Map<String, Long> staticDims, Integer clipSkip, List<String> keepOutputs,
    boolean sdxl) {
  public static final Specialization NONE =
      new Specialization(ConstantFolding.DEFAULT_LIMIT_BYTES, Map.of(), null, List.of(), false);

  public Specialization {
    staticDims = java.util.Collections.unmodifiableMap(new TreeMap<>(staticDims));
    keepOutputs = List.copyOf(keepOutputs);
  }

  public Specialization withFoldLimit(long bytes) {
    return new Specialization(bytes, staticDims, clipSkip, keepOutputs, sdxl);
  }

  public Specialization withStaticDims(Map<String, Long> dims) {
    return new Specialization(foldLimitBytes, dims, clipSkip, keepOutputs, sdxl);
  }

  public Specialization withClipSkip(Integer layers) {
    return new Specialization(foldLimitBytes, staticDims, layers, keepOutputs, sdxl);
  }

  public Specialization withKeepOutputs(List<String> names) {
    return new Specialization(foldLimitBytes, staticDims, clipSkip, names, sdxl);
  }

  public Specialization withSdxl(boolean value) {
    return new Specialization(foldLimitBytes, staticDims, clipSkip, keepOutputs, value);
  }

  public boolean isStatic() {
    return !staticDims.isEmpty();
  }

  public boolean prunesOutputs() {
    return clipSkip != null || !keepOutputs.isEmpty();
  }
}
