package dev.kiln.runner.pipeline;

import dev.kiln.common.KilnException;
import dev.kiln.common.PipelineLayout;
import dev.kiln.runner.InvalidRequest;
import dev.kiln.runner.config.JsonConfig;
import dev.kiln.runner.scheduler.SchedulerConfig;
import dev.kiln.runner.scheduler.SchedulerKind;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A pipeline folder in the diffusers/Optimum ONNX layout: {@code text_encoder[_2]/model.onnx},
 * {@code tokenizer[_2]/}, {@code unet/model.onnx}, {@code vae_decoder/model.onnx} (+ optional
 * {@code vae_encoder}), {@code scheduler/scheduler_config.json} and the components' {@code config.json}.
 * Everything the sampling math needs (VAE scale factor and scaling, latent channels, default size, SDXL or
 * not) is read here from the configs rather than assumed.
 */
public final class PipelineFolder {
  private final Path root;
  private final String name;
  private final boolean xl;
  private final SchedulerConfig schedulerConfig;
  private final SchedulerKind defaultScheduler;
  private final String schedulerClass;
  private final double vaeScalingFactor;
  private final int vaeScaleFactor;
  private final int latentChannels;
  private final int defaultSize;
  private final int unetDownsampling;
  private final int unetBaseChannels;
  /** The UNet's block_out_channels and layers_per_block (per block), for ControlNet residual shapes; null when unstated. */
  private final int[] unetBlockChannels;
  private final int[] unetLayersPerBlock;
  private final boolean hasControlNet;
  private final int vaeBaseChannels;
  private final int topAttentionHeads;
  private final boolean forceZerosForEmptyPrompt;
  /** The image size `kiln optimize --static` baked in (model_index.json "kiln_static"), 0 where a side is dynamic. */
  private final int staticWidth;
  private final int staticHeight;
  /** The clip skip `kiln optimize --clip-skip` baked into the text encoders (model_index.json "kiln_clip_skip"), or -1. */
  private final int bakedClipSkip;

  private PipelineFolder(Path root, String name) {
    this.root = root;
    this.name = name;
    JsonConfig index = JsonConfig.read(root.resolve(PipelineLayout.INDEX), true);
    var specialized = index.node().path("kiln_static");
    this.staticWidth = specialized.path("width").canConvertToInt() ? specialized.path("width").intValue() : 0;
    this.staticHeight = specialized.path("height").canConvertToInt() ? specialized.path("height").intValue() : 0;
    var baked = index.node().path("kiln_clip_skip");
    this.bakedClipSkip = baked.canConvertToInt() && baked.intValue() >= 0 ? baked.intValue() : -1;
    this.xl = Files.isDirectory(root.resolve(PipelineLayout.TEXT_ENCODER_2)) || index.text("_class_name", "").contains("XL");
    for (String component : xl ? new String[] {PipelineLayout.TEXT_ENCODER, PipelineLayout.TEXT_ENCODER_2, PipelineLayout.UNET, PipelineLayout.VAE_DECODER}
        : new String[] {PipelineLayout.TEXT_ENCODER, PipelineLayout.UNET, PipelineLayout.VAE_DECODER}) {
      if (!Files.isRegularFile(model(component))) {
        throw new KilnException.BadInput("pipeline " + root + " has no " + component + "/model.onnx (expected the diffusers/Optimum ONNX layout)");
      }
    }
    for (String tokenizer : xl ? new String[] {PipelineLayout.TOKENIZER, PipelineLayout.TOKENIZER_2} : new String[] {PipelineLayout.TOKENIZER}) {
      if (!Files.isDirectory(root.resolve(tokenizer))) {
        throw new KilnException.BadInput("pipeline " + root + " has no " + tokenizer + "/ folder");
      }
    }
    Path schedulerFile = PipelineLayout.schedulerConfig(root);
    this.schedulerConfig = SchedulerConfig.read(schedulerFile);
    this.schedulerClass = JsonConfig.read(schedulerFile, false).text("_class_name", "");
    SchedulerKind fromClass = SchedulerKind.fromDiffusersClass(schedulerClass);
    if (fromClass == null && !schedulerClass.isEmpty()) {
      // Refused by name rather than silently replaced; --scheduler picks one Kiln implements.
      this.defaultScheduler = null;
    } else {
      this.defaultScheduler = fromClass != null ? fromClass : SchedulerKind.DDIM;
    }
    JsonConfig vae = JsonConfig.read(PipelineLayout.config(root, PipelineLayout.VAE_DECODER), true);
    if (vae.node().isEmpty()) {
      vae = JsonConfig.read(PipelineLayout.config(root, PipelineLayout.VAE), true);
    }
    this.vaeScalingFactor = vae.number("scaling_factor", 0.18215, Double.MIN_VALUE, 1000);
    int[] blocks = vae.integers("block_out_channels", MAX_BLOCKS, 1, MAX_CHANNELS);
    // The VAE halves resolution once per down block after the first: 4 blocks -> factor 8.
    this.vaeScaleFactor = blocks != null ? 1 << (blocks.length - 1) : 8;
    this.vaeBaseChannels = blocks != null ? blocks[0] : 128;
    JsonConfig unet = JsonConfig.read(PipelineLayout.config(root, PipelineLayout.UNET), true);
    this.latentChannels = vae.integer("latent_channels", unet.integer("in_channels", 4, 1, MAX_CHANNELS), 1, MAX_CHANNELS);
    this.defaultSize = unet.integer("sample_size", xl ? 128 : 64, 1, MAX_SAMPLE_SIZE) * vaeScaleFactor;
    int[] unetBlocks = unet.integers("block_out_channels", MAX_BLOCKS, 1, MAX_CHANNELS);
    // Each UNet down block but the last halves the latents, and the skip connections need them to halve evenly.
    this.unetDownsampling = unetBlocks != null ? 1 << (unetBlocks.length - 1) : 1;
    this.unetBaseChannels = unetBlocks != null ? unetBlocks[0] : 320;
    this.unetBlockChannels = unetBlocks;
    this.unetLayersPerBlock = unetBlocks == null ? null : layersPerBlock(unet, unetBlocks.length);
    // model_index.json lists "controlnet" in a ControlNet pipeline: a listed but missing model is refused, not ignored.
    this.hasControlNet = Files.isRegularFile(model(PipelineLayout.CONTROLNET));
    if (!hasControlNet && index.node().has(PipelineLayout.CONTROLNET)) {
      throw new KilnException.BadInput("pipeline " + root + " lists a controlnet in " + PipelineLayout.INDEX + " but has no "
          + PipelineLayout.CONTROLNET + "/model.onnx");
    }
    String[] downBlocks = unet.texts("down_block_types", MAX_BLOCKS);
    boolean topAttention = downBlocks == null || downBlocks.length == 0 || downBlocks[0].contains("Attn");
    // diffusers reads num_attention_heads, falling back to attention_head_dim (which SD configs use for the head count).
    Integer heads = unet.firstOfIntegers("num_attention_heads", 1, 4096);
    if (heads == null) {
      heads = unet.firstOfIntegers("attention_head_dim", 1, 4096);
    }
    this.topAttentionHeads = topAttention ? (heads != null ? heads : 8) : 0;
    this.forceZerosForEmptyPrompt = index.bool("force_zeros_for_empty_prompt", xl);
  }

  /** diffusers' layers_per_block: one count for every block, or a list with one per block; 2 when unstated. */
  private static int[] layersPerBlock(JsonConfig unet, int blocks) {
    int[] layers = new int[blocks];
    if (unet.node().path("layers_per_block").isArray()) {
      int[] listed = unet.integers("layers_per_block", MAX_BLOCKS, 1, 64);
      if (listed.length != blocks) {
        throw unet.bad("layers_per_block", "one entry per block (" + blocks + ")", unet.node().get("layers_per_block"));
      }
      return listed;
    }
    java.util.Arrays.fill(layers, unet.integer("layers_per_block", 2, 1, 64));
    return layers;
  }

  /** Diffusers models have 1 to 4 blocks; 8 leaves room without letting 2^(blocks - 1) overflow a size. */
  static final int MAX_BLOCKS = 8;
  static final int MAX_CHANNELS = 65_536;
  /** The largest UNet sample_size (latent pixels) accepted from a config: 1024 latents = 8192 pixels at factor 8. */
  static final int MAX_SAMPLE_SIZE = 1024;

  /** Opens and checks a pipeline folder; a missing folder or component is bad input naming it. */
  public static PipelineFolder open(Path root) {
    if (!Files.isDirectory(root)) {
      throw new KilnException.BadInput("pipeline folder " + root + " does not exist or is not a directory");
    }
    return new PipelineFolder(root.toAbsolutePath().normalize(), root.toAbsolutePath().normalize().getFileName().toString());
  }

  /** Opens a pipeline under another name (a bundle keeps its source's name, which PNG metadata reports as the model). */
  public static PipelineFolder open(Path root, String name) {
    PipelineFolder folder = open(root);
    return new PipelineFolder(folder.root, name);
  }

  public Path root() {
    return root;
  }

  public String name() {
    return name;
  }

  public Path model(String component) {
    return PipelineLayout.model(root, component);
  }

  public boolean hasVaeEncoder() {
    return Files.isRegularFile(model(PipelineLayout.VAE_ENCODER));
  }

  /** True when the folder holds {@code controlnet/model.onnx} (a diffusers ControlNet pipeline). */
  public boolean hasControlNet() {
    return hasControlNet;
  }

  /** The UNet config's block_out_channels, or null when the config does not state them. */
  int[] unetBlockChannels() {
    return unetBlockChannels == null ? null : unetBlockChannels.clone();
  }

  /** The UNet config's layers_per_block, one per block, or null when block_out_channels is unstated. */
  int[] unetLayersPerBlock() {
    return unetLayersPerBlock == null ? null : unetLayersPerBlock.clone();
  }

  public boolean xl() {
    return xl;
  }

  public SchedulerConfig schedulerConfig() {
    return schedulerConfig;
  }

  /**
   * The scheduler the pipeline was published with (DDIM when the config names none). A scheduler Kiln does not
   * implement is refused by name: the caller must choose one.
   */
  public SchedulerKind defaultScheduler() {
    if (defaultScheduler == null) {
      throw new InvalidRequest("scheduler", "must be given: this pipeline declares " + schedulerClass + ", which Kiln does not implement"
          + " (Kiln has " + SchedulerKind.names() + ")");
    }
    return defaultScheduler;
  }

  /** Channels of the UNet's first (full-resolution) block, for the memory estimate. */
  int unetBaseChannels() {
    return unetBaseChannels;
  }

  /** Channels of the VAE's full-resolution block, for the memory estimate. */
  int vaeBaseChannels() {
    return vaeBaseChannels;
  }

  /** Attention heads at the UNet's full latent resolution; 0 when its first block has no attention (SDXL). */
  int topAttentionHeads() {
    return topAttentionHeads;
  }

  public String schedulerClass() {
    return schedulerClass;
  }

  public double vaeScalingFactor() {
    return vaeScalingFactor;
  }

  public int vaeScaleFactor() {
    return vaeScaleFactor;
  }

  /** Pixel sizes must be multiples of this: the VAE factor times the UNet's total downsampling. */
  public int sizeMultiple() {
    return vaeScaleFactor * unetDownsampling;
  }

  /** The width `kiln optimize --static` fixed, or 0 when the folder takes any width. */
  public int staticWidth() {
    return staticWidth;
  }

  /** The height `kiln optimize --static` fixed, or 0 when the folder takes any height. */
  public int staticHeight() {
    return staticHeight;
  }

  /** The clip skip baked into this folder's text encoders by `kiln optimize --clip-skip`, or -1 when none is. */
  public int bakedClipSkip() {
    return bakedClipSkip;
  }

  public int latentChannels() {
    return latentChannels;
  }

  public int defaultSize() {
    return defaultSize;
  }

  public boolean forceZerosForEmptyPrompt() {
    return forceZerosForEmptyPrompt;
  }
}
