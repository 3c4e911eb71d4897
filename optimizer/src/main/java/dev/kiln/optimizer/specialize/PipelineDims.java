package dev.kiln.optimizer.specialize;

import com.fasterxml.jackson.databind.JsonNode;
import dev.kiln.common.Json;
import dev.kiln.common.KilnException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * {@code --static} on a pipeline folder: the user binds image-level sizes ({@code height}, {@code width} in pixels,
 * {@code sequence} in tokens) and each component gets its own symbolic dims in the diffusers/Optimum layout — the
 * UNet's {@code height}/{@code width} and the VAE's {@code height_latent}/{@code width_latent} are latents, the
 * image size divided by the VAE factor read from the VAE config as the runner does (2^(blocks − 1), default 8).
 * The batch stays dynamic in a folder: the runner runs the UNet at twice the prompt batch under classifier-free
 * guidance and at the prompt batch without, so no one size is right for every generation.
 */
public final class PipelineDims {
  private PipelineDims() {}

  /** The names a folder's {@code --static} takes. */
  public static final Set<String> NAMES = Set.of("height", "width", "sequence");

  /** The model_index.json key recording the image size a folder was specialized to. */
  public static final String RECORD_KEY = "kiln_static";

  /** Refuses names a folder does not take and sizes the VAE and UNet cannot divide; returns the VAE factor. */
  public static int check(Path pipeline, Map<String, Long> dims) {
    for (String name : dims.keySet()) {
      if (!NAMES.contains(name)) {
        throw new KilnException.BadInput("--static " + name + ": a pipeline folder binds height and width (image pixels) "
            + "and sequence (tokens); the batch stays dynamic (the UNet runs at twice the prompt batch under guidance)");
      }
    }
    int factor = vaeFactor(pipeline);
    for (String name : new String[] {"height", "width"}) {
      Long size = dims.get(name);
      if (size != null && size % factor != 0) {
        throw new KilnException.BadInput("--static " + name + "=" + size + ": the image size must be a multiple of the "
            + "VAE factor " + factor + " (" + pipeline.resolve("vae_decoder").resolve("config.json") + ")");
      }
    }
    return factor;
  }

  /** The dims of the component in {@code folder} for the image-level binding {@code dims}. */
  public static Map<String, Long> forComponent(String folder, Map<String, Long> dims, int factor) {
    Map<String, Long> bound = new LinkedHashMap<>();
    Long sequence = dims.get("sequence");
    Long height = dims.get("height");
    Long width = dims.get("width");
    switch (folder) {
      case "text_encoder", "text_encoder_2" -> put(bound, "sequence_length", sequence);
      case "unet" -> {
        put(bound, "height", height == null ? null : height / factor);
        put(bound, "width", width == null ? null : width / factor);
        put(bound, "sequence_length", sequence);
      }
      case "controlnet" -> {
        // The latent as the UNet's, and the control image (controlnet_cond) at the image's own size.
        put(bound, "height", height == null ? null : height / factor);
        put(bound, "width", width == null ? null : width / factor);
        put(bound, "sequence_length", sequence);
        put(bound, "image_height", height);
        put(bound, "image_width", width);
      }
      default -> {
        put(bound, "height", height);
        put(bound, "width", width);
        put(bound, "height_latent", height == null ? null : height / factor);
        put(bound, "width_latent", width == null ? null : width / factor);
      }
    }
    return bound;
  }

  private static void put(Map<String, Long> bound, String name, Long size) {
    if (size != null) {
      bound.put(name, size);
    }
  }

  static int vaeFactor(Path pipeline) {
    for (String folder : new String[] {"vae_decoder", "vae"}) {
      Path config = pipeline.resolve(folder).resolve("config.json");
      if (!Files.isRegularFile(config)) {
        continue;
      }
      try {
        JsonNode blocks = Json.mapper().readTree(config.toFile()).path("block_out_channels");
        if (blocks.isArray() && blocks.size() >= 1 && blocks.size() <= 8) {
          return 1 << (blocks.size() - 1);
        }
      } catch (IOException e) {
        throw new KilnException.BadInput(config + ": " + Json.describe(e));
      }
    }
    return 8;
  }
}
