package dev.kiln.testdata;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The module inventory the generator counted in torch agrees with the op histograms of the exports: the numbers
 * fusion tests derive their expected counts from are consistent with what is in the graphs.
 */
class ComponentInventoryTest {
  static List<String> components() {
    return Fixtures.componentNames();
  }

  @Test
  void allFifteenComponentsAreGenerated() {
    assertEquals(Set.of("clip_text", "unet", "vae_decoder", "vae_encoder", "vae_decoder_overflow", "sd2_clip_text",
        "sd2_unet", "sdxl_clip_text_2", "sdxl_unet", "unet_sdpa", "sd2_unet_sdpa", "sdxl_unet_sdpa",
        "vae_decoder_sdpa", "controlnet", "unet_controlnet"), Set.copyOf(components()));
    assertEquals(List.of("sd2_unet_sdpa", "sdxl_unet_sdpa", "unet_sdpa", "vae_decoder_sdpa"), components().stream()
        .filter(name -> Fixtures.manifest().component(name).attention().equals("sdpa")).sorted().toList());
    for (String name : components()) {
      Manifest.Component component = Fixtures.manifest().component(name);
      boolean sdpa = component.attention().equals("sdpa");
      // The ControlNet pair is committed at opset 17 only (each opset is another few-MB binary).
      boolean controlnet = name.contains("controlnet");
      assertEquals(sdpa ? List.of(Opset.V14) : controlnet ? List.of(Opset.V17) : List.of(Opset.V14, Opset.V17),
          component.opsets(), name);
      assertEquals(!sdpa, component.hasTorchScript(), name);
    }
  }

  @ParameterizedTest
  @MethodSource("components")
  void exportedOpCountsMatchTheModuleInventory(String name) {
    Manifest.Component component = Fixtures.manifest().component(name);
    for (Opset opset : component.opsets()) {
      Manifest.OnnxFile onnx = component.onnx(opset);
      String where = name + " opset " + opset.version();
      // torch 1.13 exports GroupNorm as Reshape → InstanceNormalization → Reshape → Mul → Add
      assertEquals(component.modules("GroupNorm"), onnx.count("InstanceNormalization"), where);
      assertEquals(component.modules("Conv2d"), onnx.count("Conv"), where);
      assertEquals(component.modules("Attention"), onnx.count("Softmax"), where);
      assertEquals(component.modules("Upsample2D"), onnx.count("Resize"), where);
      // every Linear is one MatMul (3-D input) or Gemm (2-D); each attention adds QKᵀ and PV products
      assertEquals(component.modules("Linear") + 2 * component.modules("Attention"),
          onnx.count("MatMul") + onnx.count("Gemm"), where);
      // exact GELU appears as Erf: in GEGLU, and in the MLP of gelu text encoders
      assertEquals(component.modules("GEGLU") + component.modules("CLIPMLP(gelu)"), onnx.count("Erf"), where);
      assertTrue(onnx.count("Sigmoid") >= component.modules("GroupNorm+SiLU")
          + component.modules("CLIPMLP(quick_gelu)"), where);
      if (opset == Opset.V17) {
        assertEquals(component.modules("LayerNorm"), onnx.count("LayerNormalization"), where);
      } else {
        // below opset 17 LayerNorm decomposes: ReduceMean → Sub → Pow → ReduceMean → Add → Sqrt → Div → Mul → Add
        assertEquals(0, onnx.count("LayerNormalization"), where);
        assertEquals(2 * component.modules("LayerNorm"), onnx.count("ReduceMean"), where);
      }
      // torch 2's SDPA computes its scale in the graph: Sqrt(head size), then Sqrt(1/·) shared by q and kᵀ; the
      // opset-14 LayerNorm decomposition has one Sqrt of its own; the torch-1 form has a constant scale
      int layerNormSqrt = opset == Opset.V17 ? 0 : component.modules("LayerNorm");
      int attentionSqrt = component.attention().equals("sdpa") ? 2 * component.modules("Attention") : 0;
      assertEquals(layerNormSqrt + attentionSqrt, onnx.count("Sqrt"), where);
      int total = onnx.opHistogram().values().stream().mapToInt(Integer::intValue).sum();
      assertEquals(onnx.nodes(), total, where);
    }
  }

  @Test
  void sdpaFormFixturesHaveTheTorch1FormsAttentionKinds() {
    Manifest manifest = Fixtures.manifest();
    // the same attention kinds as their torch-1 form twins, in narrower UNets with one layer per block
    assertEquals(List.of(7, 7), kinds(manifest.component("unet_sdpa")));
    assertEquals(List.of(7, 7), kinds(manifest.component("sd2_unet_sdpa")));
    assertEquals(List.of(11, 11), kinds(manifest.component("sdxl_unet_sdpa")));
    assertEquals(1, manifest.component("vae_decoder_sdpa").modules("Attention(self, single head, VAE)"));
    assertTrue(manifest.component("sd2_unet_sdpa").config().path("use_linear_projection").asBoolean());
    assertEquals("[2,4,4]", manifest.component("sd2_unet_sdpa").config().path("attention_head_dim").toString());
    Manifest.Component sdxl = manifest.component("sdxl_unet_sdpa");
    assertEquals("text_time", sdxl.config().path("addition_embed_type").asText());
    assertEquals("[1,1,2]", sdxl.config().path("transformer_layers_per_block").toString());
    assertEquals(manifest.component("sdxl_unet").inputs(), sdxl.inputs());
  }

  private static List<Integer> kinds(Manifest.Component component) {
    return List.of(component.modules("Attention(self)"), component.modules("Attention(cross)"));
  }

  @ParameterizedTest
  @MethodSource("components")
  void everyComponentHasTwoDataSetsThatDifferInBatchAndShape(String name) {
    Manifest.Component component = Fixtures.manifest().component(name);
    List<TestDataSet> sets = component.testDataSets();
    assertEquals(2, sets.size(), name);
    for (TestDataSet set : sets) {
      assertEquals(component.inputs(), set.inputs().stream().map(StoredTensor::name).toList(), name);
      assertEquals(component.outputs(), set.outputs().stream().map(StoredTensor::name).toList(), name);
      for (StoredTensor output : set.outputs()) {
        assertTrue(output.maxAbs() > 0 && output.maxAbs() < 1e3, name + " " + output.name() + " " + output.maxAbs());
      }
    }
    StoredTensor first = sets.get(0).inputs().get(0);
    StoredTensor second = sets.get(1).inputs().get(0);
    assertNotEquals(first.shape().get(0), second.shape().get(0), name + ": same batch size in both sets");
    assertNotEquals(first.shape().subList(1, first.shape().size()), second.shape().subList(1, second.shape().size()),
        name + ": same non-batch shape in both sets");
  }

  @Test
  void unetInventoryIsThatOfAnSd15StyleUnet() {
    Manifest.Component unet = Fixtures.manifest().component("unet");
    assertEquals(555_380, unet.parameters());
    assertEquals(46, unet.modules("GroupNorm"));
    assertEquals(35, unet.modules("GroupNorm+SiLU"));
    assertEquals(11, unet.modules("Attention(self)"));
    assertEquals(11, unet.modules("Attention(cross)"));
    assertEquals(11, unet.modules("GEGLU"));
    assertEquals(10, unet.modules("ResnetBlock2D.conv_shortcut"));
    assertEquals(4646, unet.onnx(Opset.V17).nodes());
    assertEquals("CrossAttnDownBlock2D", unet.config().path("down_block_types").get(0).asText());
    assertTrue(!unet.config().path("use_linear_projection").asBoolean());
  }

  @Test
  void variantsCarryTheirDistinguishingStructure() {
    Manifest manifest = Fixtures.manifest();
    assertTrue(manifest.component("sd2_unet").config().path("use_linear_projection").asBoolean());
    // linear proj_in/proj_out replace 22 of the 1x1 convs
    assertEquals(manifest.component("unet").modules("Conv2d") - 22, manifest.component("sd2_unet").modules("Conv2d"));
    Manifest.Component sdxl = manifest.component("sdxl_unet");
    assertEquals(List.of("sample", "timestep", "encoder_hidden_states", "text_embeds", "time_ids"), sdxl.inputs());
    assertEquals("text_time", sdxl.config().path("addition_embed_type").asText());
    assertEquals(17, sdxl.modules("BasicTransformerBlock"));
    Manifest.Component second = manifest.component("sdxl_clip_text_2");
    assertEquals("text_embeds", second.outputs().get(0));
    assertEquals(sdxl.config().path("cross_attention_dim").asInt(),
        manifest.component("clip_text").config().path("hidden_size").asInt()
            + second.config().path("hidden_size").asInt(), "SDXL context = both penultimate states concatenated");
    assertEquals(List.of("latent_parameters"), manifest.component("vae_encoder").outputs());
    assertEquals(8L, manifest.component("vae_encoder").testDataSets().get(0).outputs().get(0).shape().get(1));
  }
}
