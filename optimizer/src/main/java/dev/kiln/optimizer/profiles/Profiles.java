package dev.kiln.optimizer.profiles;

import dev.kiln.optimizer.cleanups.IdentityElimination;
import dev.kiln.optimizer.cleanups.NoOpCastElimination;
import dev.kiln.optimizer.cleanups.NoOpReshapeElimination;
import dev.kiln.optimizer.cleanups.UnitArithmeticElimination;
import dev.kiln.optimizer.engine.Rule;
import dev.kiln.optimizer.fusions.BiasAddFusion;
import dev.kiln.optimizer.fusions.BiasGeluFusion;
import dev.kiln.optimizer.fusions.BiasSplitGeluFusion;
import dev.kiln.optimizer.fusions.ClipAttentionFusion;
import dev.kiln.optimizer.fusions.GeluFusion;
import dev.kiln.optimizer.fusions.GroupNormFusion;
import dev.kiln.optimizer.fusions.LayerNormFusion;
import dev.kiln.optimizer.fusions.NhwcConvFusion;
import dev.kiln.optimizer.fusions.QuickGeluFusion;
import dev.kiln.optimizer.fusions.SkipGroupNormFusion;
import dev.kiln.optimizer.fusions.SkipLayerNormFusion;
import dev.kiln.optimizer.fusions.TransposeCancellation;
import dev.kiln.optimizer.fusions.UnetAttentionFusion;
import dev.kiln.optimizer.fusions.VaeAttentionFusion;
import dev.kiln.optimizer.passes.GraphPass;
import dev.kiln.optimizer.passes.LayerNormOpset;
import dev.kiln.optimizer.passes.ConstantFolding;
import dev.kiln.optimizer.passes.ShapeReadRerooting;
import dev.kiln.optimizer.passes.ShapeSubexpressionElimination;
import java.util.ArrayList;
import java.util.List;

/**
 * Every optimization pipeline Kiln runs, as data: target EP × component → ordered steps. Read it top to bottom.
 *
 * <ul>
 *   <li><b>cpu</b> — only ops with CPU kernels in ONNX Runtime (REFERENCE §2): LayerNormalization,
 *       SkipLayerNormalization, Gelu, BiasGelu, QuickGelu, Attention, MultiHeadAttention with separate q/k/v
 *       (the CPU kernel rejects packed QKV). Never GroupNorm, SkipGroupNorm, BiasSplitGelu, BiasAdd, NhwcConv.
 *   <li><b>cuda</b> — everything: packed-QKV/KV MultiHeadAttention, and the channels-last GroupNorm family.
 *   <li><b>tensorrt</b> — clean-ups only. TensorRT's ONNX parser reads the standard domain; com.microsoft ops
 *       would need plugins, and TensorRT fuses attention and normalization itself from the plain form, so
 *       Kiln only removes noise (identities, no-op casts and reshapes, duplicated shape arithmetic).
 * </ul>
 */
public final class Profiles {
  private Profiles() {}

  /** One step: a set of rules run together to a fixpoint by the driver, or a whole-graph pass. */
  public sealed interface Step permits RuleStep, PassStep {}

  public record RuleStep(List<Rule> rules) implements Step {}

  public record PassStep(GraphPass pass) implements Step {}

  public record Profile(Target target, Component component, List<Step> steps) {
    /** Names of every rule and pass, in order (what the pinning test compares). */
    public List<String> names() {
      List<String> names = new ArrayList<>();
      for (Step step : steps) {
        if (step instanceof RuleStep rules) {
          rules.rules().forEach(rule -> names.add(rule.name()));
        } else {
          names.add(((PassStep) step).pass().name());
        }
      }
      return names;
    }
  }

  /** The profile as deployed: CUDA fusions only where ORT's CUDA kernels accept the sizes. */
  public static Profile of(Target target, Component component) {
    return of(target, component, true);
  }

  /**
   * @param cudaKernelLimits whether BiasSplitGelu/BiasAdd are refused for sizes their CUDA kernels reject (hidden
   *     2560/5120/10240, channels 320/640/1280 — what SD 1.x/2.x/XL have); off only for small test graphs
   */
  public static Profile of(Target target, Component component, boolean cudaKernelLimits) {
    return of(target, component, cudaKernelLimits, ConstantFolding.DEFAULT_LIMIT_BYTES);
  }

  /** @param foldLimitBytes the largest tensor constant folding makes or reads ({@code --fold-limit}) */
  public static Profile of(Target target, Component component, boolean cudaKernelLimits, long foldLimitBytes) {
    List<Step> steps = new ArrayList<>();
    // Clean-ups first: an Identity or a no-op Cast inside a site hides it from every pattern below.
    steps.addAll(cleanups(foldLimitBytes));
    List<Rule> fusions = fusions(target, component);
    if (!fusions.isEmpty()) {
      steps.add(new RuleStep(fusions));
    }
    if (target == Target.CUDA) {
      // After the shared fusions: BiasAdd must leave the attention outputs' residual Adds to SkipLayerNormalization.
      steps.add(new RuleStep(cudaGroupNormFamily(cudaKernelLimits)));
    }
    // Clean-ups again, on what the fusions left behind (shape reads and reshapes around the fused ops).
    steps.addAll(cleanups(foldLimitBytes));
    if (!fusions.isEmpty()) {
      // Last: the LayerNorm fusion may have put a LayerNormalization (opset 17) into an opset 14–16 model.
      steps.add(new PassStep(new LayerNormOpset()));
    }
    return new Profile(target, component, List.copyOf(steps));
  }

  /**
   * The fusions cpu and cuda share, per component, in the order they run. The one difference: cuda's UNet
   * attention packs QKV (self-attention) and KV (cross-attention) into one MatMul, which ORT's CPU
   * MultiHeadAttention kernel rejects. tensorrt gets none (see the class comment).
   */
  private static List<Rule> fusions(Target target, Component component) {
    if (target == Target.TENSORRT) {
      return List.of();
    }
    UnetAttentionFusion unetAttention =
        target == Target.CUDA ? UnetAttentionFusion.packed() : UnetAttentionFusion.separateProjections();
    // LayerNorm before SkipLayerNorm: SkipLayerNorm matches Add -> LayerNormalization, what LayerNorm emits.
    // Gelu before BiasGelu: BiasGelu matches Add -> com.microsoft.Gelu, what Gelu emits.
    return switch (component) {
      case TEXT_ENCODER -> List.of(new LayerNormFusion(), new SkipLayerNormFusion(), new QuickGeluFusion(),
          GeluFusion.exact(), new BiasGeluFusion(), new ClipAttentionFusion());
      // The ControlNet is the UNet's encoder half: the same transformer blocks, GroupNorm+SiLU resnets and
      // attention; its extra convolutions (control embedding, 1x1 zero convs) have nothing to fuse.
      case UNET, CONTROLNET -> List.of(new LayerNormFusion(), new SkipLayerNormFusion(), GeluFusion.exact(), new BiasGeluFusion(),
          unetAttention);
      case VAE_DECODER, VAE_ENCODER -> List.of(new LayerNormFusion(), new VaeAttentionFusion());
    };
  }

  /**
   * Identities, no-op casts/reshapes, unit arithmetic, duplicated shape arithmetic; then everything that became
   * constant (shape arithmetic, attention scales computed from shapes), before the fusions read it.
   */
  private static List<Step> cleanups(long foldLimitBytes) {
    return List.of(
        new RuleStep(List.of(new IdentityElimination(), new NoOpCastElimination(), new UnitArithmeticElimination(),
            new NoOpReshapeElimination())),
        // Rerooting before merging: re-rooted reads of the same size become identical, so the merge takes them.
        new PassStep(new ShapeReadRerooting()),
        new PassStep(new ShapeSubexpressionElimination()),
        // Every node whose inputs are known (shape arithmetic, attention scales, masks) becomes an initializer.
        new PassStep(new ConstantFolding(foldLimitBytes)));
  }

  /** The CUDA-only GroupNorm family (GroupNorm, SkipGroupNorm, BiasSplitGelu, BiasAdd, NhwcConv), in the order they run. */
  private static List<Rule> cudaGroupNormFamily(boolean cudaKernelLimits) {
    return List.of(
        // GroupNorm before SkipGroupNorm: SkipGroupNorm matches GroupNorm(Transpose(Add)), what GroupNorm emits.
        GroupNormFusion.channelsLast(),
        new SkipGroupNormFusion(),
        cudaKernelLimits ? BiasSplitGeluFusion.cudaKernelSizesOnly() : BiasSplitGeluFusion.anySize(),
        cudaKernelLimits ? BiasAddFusion.cudaKernelSizesOnly() : BiasAddFusion.anySize(),
        new NhwcConvFusion(),
        // Last: it removes the Transpose pairs the channels-last rules above put around their ops.
        new TransposeCancellation());
  }
}
