package dev.kiln.optimizer;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kiln.optimizer.profiles.Component;
import dev.kiln.optimizer.profiles.Profiles;
import dev.kiln.optimizer.profiles.Target;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Pins every pipeline: changing a profile means changing this table, on purpose. */
class ProfilesTest {
  private static final List<String> CLEANUPS = List.of("remove-identity", "remove-noop-cast", "remove-unit-arithmetic",
      "remove-noop-reshape", "reroot-shape-reads", "merge-shape-subexpressions", "fold-constants");
  private static final List<String> CUDA_FAMILY = List.of("group-norm", "skip-group-norm", "bias-split-gelu", "bias-add",
      "nhwc-conv", "transpose-cancel");

  private static List<String> of(List<String> fusions, List<String> cuda) {
    List<String> names = new java.util.ArrayList<>(CLEANUPS);
    names.addAll(fusions);
    names.addAll(cuda);
    names.addAll(CLEANUPS);
    if (!fusions.isEmpty()) {
      names.add("layer-norm-opset");
    }
    return names;
  }

  @Test
  void everyProfileIsPinned() {
    List<String> text = List.of("layer-norm", "skip-layer-norm", "quick-gelu", "gelu", "bias-gelu", "clip-attention");
    List<String> unet = List.of("layer-norm", "skip-layer-norm", "gelu", "bias-gelu", "unet-attention");
    List<String> vae = List.of("layer-norm", "vae-attention");
    Map<String, List<String>> expected = new LinkedHashMap<>();
    expected.put("cpu/text-encoder", of(text, List.of()));
    expected.put("cpu/unet", of(unet, List.of()));
    // A ControlNet is the UNet's encoder half: the UNet's pipeline.
    expected.put("cpu/controlnet", of(unet, List.of()));
    expected.put("cpu/vae-decoder", of(vae, List.of()));
    expected.put("cpu/vae-encoder", of(vae, List.of()));
    expected.put("cuda/text-encoder", of(text, CUDA_FAMILY));
    expected.put("cuda/unet", of(unet, CUDA_FAMILY));
    expected.put("cuda/controlnet", of(unet, CUDA_FAMILY));
    expected.put("cuda/vae-decoder", of(vae, CUDA_FAMILY));
    expected.put("cuda/vae-encoder", of(vae, CUDA_FAMILY));
    for (Component component : Component.values()) {
      expected.put("tensorrt/" + component.id(), of(List.of(), List.of()));
    }
    Map<String, List<String>> actual = new LinkedHashMap<>();
    for (Target target : Target.values()) {
      for (Component component : Component.values()) {
        actual.put(target.id() + "/" + component.id(), Profiles.of(target, component).names());
      }
    }
    assertEquals(expected, actual);
  }
}
