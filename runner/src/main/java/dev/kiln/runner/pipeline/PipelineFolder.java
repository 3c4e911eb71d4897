package dev.kiln.runner.pipeline;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.common.KilnException;
import dev.kiln.runner.scheduler.SchedulerConfig;
import dev.kiln.runner.scheduler.SchedulerKind;
import java.io.IOException;
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
  private static final ObjectMapper MAPPER = new ObjectMapper();
  /** VAE and UNet down-block lists: 4 in every Stable Diffusion; 8 would already halve a 512 image to 4 pixels. */
  private static final int MAX_BLOCKS = 8;
  private static final int MAX_LATENT_CHANNELS = 64;
  /** Default image side (SD 1.5: 512, SDXL: 1024); 16384 keeps its RGB pixels and latents within Java arrays. */
  private static final int MAX_DEFAULT_SIZE = 16384;
  private final Path root;
  private final boolean xl;
  private final SchedulerConfig schedulerConfig;
  private final SchedulerKind defaultScheduler;
  private final String schedulerClass;
  private final double vaeScalingFactor;
  private final int vaeScaleFactor;
  private final int latentChannels;
  private final int defaultSize;
  private final int unetDownsampling;
  private final boolean forceZerosForEmptyPrompt;

  private PipelineFolder(Path root) {
    this.root = root;
    JsonNode index = readOptional(root.resolve("model_index.json"));
    this.xl = Files.isDirectory(root.resolve("text_encoder_2")) || index.path("_class_name").asText("").contains("XL");
    for (String component : xl ? new String[] {"text_encoder", "text_encoder_2", "unet", "vae_decoder"} : new String[] {"text_encoder", "unet", "vae_decoder"}) {
      if (!Files.isRegularFile(model(component))) {
        throw new KilnException.BadInput("pipeline " + root + " has no " + component + "/model.onnx (expected the diffusers/Optimum ONNX layout)");
      }
    }
    for (String tokenizer : xl ? new String[] {"tokenizer", "tokenizer_2"} : new String[] {"tokenizer"}) {
      if (!Files.isDirectory(root.resolve(tokenizer))) {
        throw new KilnException.BadInput("pipeline " + root + " has no " + tokenizer + "/ folder");
      }
    }
    Path schedulerFile = root.resolve("scheduler").resolve("scheduler_config.json");
    this.schedulerConfig = SchedulerConfig.read(schedulerFile);
    this.schedulerClass = readOptional(schedulerFile).path("_class_name").asText("");
    SchedulerKind fromClass = SchedulerKind.fromDiffusersClass(schedulerClass);
    this.defaultScheduler = fromClass != null ? fromClass : SchedulerKind.DDIM;
    JsonNode vae = readOptional(root.resolve("vae_decoder").resolve("config.json"));
    if (vae.isEmpty()) {
      vae = readOptional(root.resolve("vae").resolve("config.json"));
    }
    this.vaeScalingFactor = vae.path("scaling_factor").asDouble(0.18215);
    JsonNode blocks = vae.path("block_out_channels");
    // The VAE halves resolution once per down block after the first: 4 blocks -> factor 8.
    this.vaeScaleFactor = blocks.isArray() && blocks.size() > 0 ? 1 << (blocks.size() - 1) : 8;
    JsonNode unet = readOptional(root.resolve("unet").resolve("config.json"));
    this.latentChannels = vae.path("latent_channels").asInt(unet.path("in_channels").asInt(4));
    int sampleSize = unet.path("sample_size").asInt(xl ? 128 : 64);
    this.defaultSize = sampleSize * vaeScaleFactor;
    JsonNode unetBlocks = unet.path("block_out_channels");
    // Each UNet down block but the last halves the latents, and the skip connections need them to halve evenly.
    this.unetDownsampling = unetBlocks.isArray() && unetBlocks.size() > 0 ? 1 << (unetBlocks.size() - 1) : 1;
    this.forceZerosForEmptyPrompt = index.path("force_zeros_for_empty_prompt").asBoolean(xl);
    checkSizes(blocks.size(), unetBlocks.size(), sampleSize);
  }

  /**
   * The configs' sizes must give latents and images that generate can divide by and allocate: a block list of
   * 32 entries overflows the shift, channels of 0 or a NaN scaling factor make empty or black images, and a huge
   * sample_size overflows the default image's array.
   */
  private void checkSizes(int vaeBlocks, int unetBlocks, int sampleSize) {
    Path vaeConfig = Files.isRegularFile(root.resolve("vae_decoder").resolve("config.json"))
        ? root.resolve("vae_decoder").resolve("config.json") : root.resolve("vae").resolve("config.json");
    Path unetConfig = root.resolve("unet").resolve("config.json");
    if (vaeBlocks > MAX_BLOCKS) {
      throw new KilnException.BadInput("config " + vaeConfig + ": block_out_channels has " + vaeBlocks + " entries, expected 1 to " + MAX_BLOCKS);
    }
    if (unetBlocks > MAX_BLOCKS) {
      throw new KilnException.BadInput("config " + unetConfig + ": block_out_channels has " + unetBlocks + " entries, expected 1 to " + MAX_BLOCKS);
    }
    if (latentChannels < 1 || latentChannels > MAX_LATENT_CHANNELS) {
      throw new KilnException.BadInput("config " + vaeConfig + " (latent_channels) or " + unetConfig + " (in_channels): " + latentChannels
          + " latent channels, expected 1 to " + MAX_LATENT_CHANNELS);
    }
    if (!(vaeScalingFactor > 0) || Double.isInfinite(vaeScalingFactor)) {
      throw new KilnException.BadInput("config " + vaeConfig + ": scaling_factor " + vaeScalingFactor + " is not a positive number");
    }
    if (sampleSize < 1 || (long) sampleSize * vaeScaleFactor > MAX_DEFAULT_SIZE) {
      throw new KilnException.BadInput("config " + unetConfig + ": sample_size " + sampleSize + " x VAE scale factor " + vaeScaleFactor
          + " is not a default image size from 1 to " + MAX_DEFAULT_SIZE + " pixels");
    }
    long latentSide = sampleSize;
    if (latentChannels * latentSide * latentSide > Integer.MAX_VALUE - 8) {
      throw new KilnException.BadInput("config " + unetConfig + ": sample_size " + sampleSize + " with " + latentChannels
          + " latent channels makes latents too large for one array");
    }
  }

  /** Opens and checks a pipeline folder; a missing folder or component is bad input naming it. */
  public static PipelineFolder open(Path root) {
    if (!Files.isDirectory(root)) {
      throw new KilnException.BadInput("pipeline folder " + root + " does not exist or is not a directory");
    }
    return new PipelineFolder(root.toAbsolutePath().normalize());
  }

  private static JsonNode readOptional(Path file) {
    if (!Files.isRegularFile(file)) {
      return MAPPER.createObjectNode();
    }
    try {
      JsonNode node = MAPPER.readTree(file.toFile());
      if (node == null || !node.isObject()) {
        throw new KilnException.BadInput("config " + file + " is not a JSON object");
      }
      return node;
    } catch (IOException e) {
      throw new KilnException.BadInput("cannot read config " + file + ": " + e.getMessage(), e);
    }
  }

  public Path root() {
    return root;
  }

  public String name() {
    return root.getFileName().toString();
  }

  public Path model(String component) {
    return root.resolve(component).resolve("model.onnx");
  }

  public boolean hasVaeEncoder() {
    return Files.isRegularFile(model("vae_encoder"));
  }

  public boolean xl() {
    return xl;
  }

  public SchedulerConfig schedulerConfig() {
    return schedulerConfig;
  }

  /** The scheduler the pipeline was published with, when Kiln implements it; DDIM otherwise (e.g. for PNDM). */
  public SchedulerKind defaultScheduler() {
    return defaultScheduler;
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
