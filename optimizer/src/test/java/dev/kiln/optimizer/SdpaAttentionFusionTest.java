package dev.kiln.optimizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.graph.Model;
import dev.kiln.graph.ModelReader;
import dev.kiln.graph.ModelWriter;
import dev.kiln.validator.lowering.Lowering;
import dev.kiln.optimizer.profiles.Target;
import dev.kiln.testdata.Fixtures;
import dev.kiln.testdata.Manifest;
import dev.kiln.testdata.Opset;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The torch-2 export form (scaled_dot_product_attention: 4-D heads, q and kᵀ each multiplied by the square root of a
 * scale computed from the graph) fuses as the torch-1 form does: one fused op per inventory attention
 * ({@link FixtureFusionTest} proves the same of the torch-1 twins and runs the whole profiles on these fixtures
 * too), nothing of the scale arithmetic left, and the attention rewrite alone — the other fusions off, their own
 * rounding is not the attention's — within {@value #TOLERANCE} of the original in ORT on the stored input sets,
 * on cpu and on cuda (through the lowering, as {@link FixtureFusionTest} does).
 */
class SdpaAttentionFusionTest {
  /**
   * fp32 noise of these fixtures' peaked attention (q/k drawn at twice fan-in scaling): the original multiplies q
   * and kᵀ by √s separately, the fused op the product by s. Measured: unet_sdpa 1.28e-5, sd2_unet_sdpa 1.31e-5,
   * sdxl_unet_sdpa 9.3e-6, vae_decoder_sdpa 0; the torch-1 twins' attention rewrites alone give up to 5.0e-5
   * (sdxl_unet) on the same measure.
   */
  private static final double TOLERANCE = 2e-5;
  /** Every fusion of the cpu (and cuda) profiles but the attention ones. */
  private static final Set<String> CPU_NOT_ATTENTION = Set.of("layer-norm", "skip-layer-norm", "gelu", "bias-gelu",
      "quick-gelu");
  private static final Set<String> CUDA_NOT_ATTENTION = Set.of("layer-norm", "skip-layer-norm", "gelu", "bias-gelu",
      "quick-gelu", "group-norm", "skip-group-norm", "bias-split-gelu", "bias-add", "nhwc-conv", "transpose-cancel");

  /** Sizes for the tiny pipeline's symbolic axes: an odd token count, a non-square latent. */
  private static final Map<String, Long> TINY_SIZES = Map.of("batch_size", 1L, "sequence_length", 9L, "steps", 1L,
      "height", 40L, "width", 24L, "height_latent", 8L, "width_latent", 6L);

  @TempDir static Path folder;

  static Stream<Arguments> cases() {
    return Stream.of("unet_sdpa", "sd2_unet_sdpa", "sdxl_unet_sdpa", "vae_decoder_sdpa")
        .flatMap(name -> Stream.of(Target.CPU, Target.CUDA).map(target -> Arguments.of(name, target)));
  }

  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("cases")
  void everyAttentionFusesAndKeepsTheNumbers(String name, Target target) {
    Manifest.Component inventory = Fixtures.manifest().component(name);
    assertEquals("sdpa", inventory.attention());
    Path original = Fixtures.component(name, Opset.V14);
    Model model = ModelReader.read(original);
    Map<String, Integer> ops = Optimizer.optimize(model, name,
        new Optimizer.Options(target, null, target == Target.CPU ? CPU_NOT_ATTENTION : CUDA_NOT_ATTENTION, true, false))
        .opsAfter();
    String fused = inventory.kind().equals("unet") ? "com.microsoft:MultiHeadAttention" : "com.microsoft:Attention";
    assertEquals(inventory.modules("Attention"), ops.getOrDefault(fused, 0), name + " " + target.id() + " " + ops);
    assertEquals(0, ops.getOrDefault("Softmax", 0), name + " " + ops);
    // Shape → Slice → Cast → Sqrt → Div → Sqrt folded to one constant per attention, which the fusion consumed;
    // the Sqrt left is the opset-14 LayerNorm decomposition's (not fused here)
    assertEquals(inventory.modules("LayerNorm"), ops.getOrDefault("Sqrt", 0), name + " " + ops);

    Path optimized = folder.resolve(name + "-" + target.id() + ".onnx");
    ModelWriter.write(model, optimized);
    Path runnable = optimized;
    if (target == Target.CUDA) {
      Model lowered = ModelReader.read(optimized);
      Lowering.forOrtCpu().lower(lowered);
      runnable = folder.resolve(name + "-cuda-lowered.onnx");
      ModelWriter.write(lowered, runnable);
    }
    // both stored sets on cpu; the lowered cuda graph at the first (the test budget of a 2-core machine)
    for (int set = 0; set < (target == Target.CPU ? 2 : 1); set++) {
      Map<String, OrtParity.Input> inputs = FixtureModels.storedInputs(original, set);
      double error = OrtParity.maxRelativeError(OrtParity.run(original, inputs), OrtParity.run(runnable, inputs));
      assertTrue(error <= TOLERANCE, name + " " + target.id() + " set " + set + ": max relative error " + error);
    }
  }

  /**
   * The trained tiny pipeline (the demo's model) computes its scale as {@code Pow(Cast(head_dim), -0.5)} from the
   * graph and folds its keys straight to [B·N,H,S]: its UNet's 8 attentions and each VAE half's mid-block attention
   * fuse (none did before the scale folding: 2480 -> 1255 nodes on cpu), and its text encoder's 3 CLIP
   * attentions in the 4-D form (no batch folding, causal mask from Trilu) too. ORT parity on cpu ≤ 1e-4, as
   * {@link FixtureFusionTest} asks of whole profiles.
   */
  @Test
  void theTinyPipelinesAttentionsFuse() {
    Path pipeline = Fixtures.pipeline("tiny-sd");
    Map<String, Integer> attentions = Map.of("text_encoder", 3, "unet", 8, "vae_decoder", 1, "vae_encoder", 1);
    for (Target target : new Target[] {Target.CPU, Target.CUDA}) {
      int before = 0;
      int after = 0;
      for (String component : List.of("text_encoder", "unet", "vae_decoder", "vae_encoder")) {
        Model model = ModelReader.read(pipeline.resolve(component).resolve("model.onnx"));
        var report = Optimizer.optimize(model, component, Optimizer.Options.of(target).verifying());
        Map<String, Integer> ops = report.opsAfter();
        String fused = component.equals("unet") ? "com.microsoft:MultiHeadAttention" : "com.microsoft:Attention";
        assertEquals(attentions.get(component), ops.getOrDefault(fused, 0), component + " " + target.id() + " " + ops);
        assertEquals(0, ops.getOrDefault("Softmax", 0), component + " " + ops);
        before += report.nodesBefore();
        after += report.nodesAfter();
        if (target == Target.CPU) {
          Path original = pipeline.resolve(component).resolve("model.onnx");
          Path optimized = folder.resolve("tiny-" + component + ".onnx");
          ModelWriter.write(model, optimized);
          Map<String, OrtParity.Input> inputs = OrtParity.randomInputs(original, TINY_SIZES, 5, 400);
          double error = OrtParity.maxRelativeError(OrtParity.run(original, inputs), OrtParity.run(optimized, inputs));
          System.out.println("tiny-sd " + component + " cpu: max relative error " + error);
          assertTrue(error <= 1e-4, component + ": max relative error " + error);
        }
      }
      // what `kiln demo` reports for the cpu profile
      assertEquals(target == Target.CPU ? List.of(2480, 957) : List.of(2480, 450), List.of(before, after), target.id());
    }
  }
}
