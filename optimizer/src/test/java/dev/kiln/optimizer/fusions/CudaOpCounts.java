package dev.kiln.optimizer.fusions;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import dev.kiln.testdata.Manifest;
import java.util.Map;

/**
 * How many of each CUDA-only op the cuda profile must produce for a fixture, derived from the generator's module
 * inventory (manifest.json) and block layout (config.json) by following the diffusers forward passes — not from
 * what the rules happen to produce. Which GroupNorms read a residual sum decides SkipGroupNorm vs GroupNorm.
 * {@code FixtureFusionTest} calls {@link #assertCounts} on every cuda-profile fixture graph.
 */
public final class CudaOpCounts {
  private CudaOpCounts() {}

  /** Expected counts of GroupNorm (+ SkipGroupNorm), SkipGroupNorm, BiasSplitGelu, NhwcConv, residual adds. */
  public record Expected(int groupNorms, int skipGroupNorms, int biasSplitGelus, int convolutions,
      int transformerResiduals) {}

  public static Expected of(Manifest.Component component) {
    JsonNode config = component.config();
    int layers = config.path("layers_per_block").asInt();
    int skips = switch (component.kind()) {
      // norm2 of every ResNet reads conv1 + time embedding; every Transformer2D norm reads a ResNet's residual
      // output; in each down block the ResNets after the first read the previous module's residual output; both
      // mid-block ResNets do; conv_norm_out reads the last up block's residual output. Up-block ResNets read a
      // Concat and the first ResNet of a down block reads conv_in or a downsampler: plain GroupNorm.
      case "unet" -> component.modules("ResnetBlock2D") + component.modules("Transformer2DModel")
          + config.path("down_block_types").size() * (layers - 1) + 2 + 1;
      // The UNet's encoder half: as the UNet without conv_norm_out, plus the first ResNet's norm1, which reads
      // conv_in's output plus the control embedding.
      case "controlnet" -> component.modules("ResnetBlock2D") + component.modules("Transformer2DModel")
          + config.path("down_block_types").size() * (layers - 1) + 2 + 1;
      // No time embedding, so norm2 reads conv1 alone. Mid attention norm and mid ResNet 1 read residuals (ResNet 0
      // reads conv_in); every up-block ResNet reads a residual except the first of each block after an upsampler
      // conv; conv_norm_out reads the last ResNet.
      case "vae_decoder" -> 1 + 1 + config.path("up_block_types").size() * (layers + 1)
          - (config.path("up_block_types").size() - 1) + 1;
      // Down blocks: every ResNet but the first (conv_in or downsampler input); mid ResNet 0, attention and
      // ResNet 1; conv_norm_out.
      case "vae_encoder" -> config.path("down_block_types").size() * (layers - 1) + 3 + 1;
      default -> 0;
    };
    // A UNet transformer block adds three residuals (self-attention, cross-attention, feed-forward), a CLIP
    // encoder layer two; each is fused into SkipLayerNormalization (a LayerNorm reads it) or BiasAdd.
    int residuals = 3 * component.modules("BasicTransformerBlock") + 2 * component.modules("CLIPEncoderLayer");
    return new Expected(component.modules("GroupNorm"), skips, component.modules("GEGLU"),
        component.modules("Conv2d"), residuals);
  }

  /** Asserts the CUDA-only op counts of a cuda-profile graph ({@code ops}: histogram, "com.microsoft:X" keys). */
  public static void assertCounts(Manifest.Component component, Map<String, Integer> ops) {
    Expected expected = of(component);
    String where = component.name() + " cuda " + ops;
    int groupNorms = ops.getOrDefault("com.microsoft:GroupNorm", 0);
    int skipGroupNorms = ops.getOrDefault("com.microsoft:SkipGroupNorm", 0);
    assertEquals(expected.groupNorms(), groupNorms + skipGroupNorms, "GroupNorm modules: " + where);
    assertEquals(expected.skipGroupNorms(), skipGroupNorms, "GroupNorms reading a residual sum: " + where);
    assertEquals(expected.biasSplitGelus(), ops.getOrDefault("com.microsoft:BiasSplitGelu", 0), "GEGLUs: " + where);
    assertEquals(expected.convolutions(), ops.getOrDefault("com.microsoft:NhwcConv", 0), "Conv2d modules: " + where);
    assertEquals(0, ops.getOrDefault("Conv", 0) + ops.getOrDefault("InstanceNormalization", 0), where);
    assertEquals(expected.transformerResiduals(), ops.getOrDefault("com.microsoft:BiasAdd", 0)
        + ops.getOrDefault("com.microsoft:SkipLayerNormalization", 0), "transformer residual adds: " + where);
  }
}
