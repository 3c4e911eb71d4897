package dev.kiln.validator;

import dev.kiln.graph.Model;
import dev.kiln.graph.Value;
import java.util.HashSet;
import java.util.Locale;
import java.util.Set;

/** What a model is, read from its input names as diffusers/Optimum export them; decides inputs and sizes. */
public enum ComponentKind {
  TEXT_ENCODER, UNET, CONTROLNET, VAE_DECODER, VAE_ENCODER, OTHER;

  public static ComponentKind of(Model model) {
    Set<String> names = new HashSet<>();
    for (Value input : model.graph().inputs()) {
      if (!input.isInitializer()) {
        names.add(input.name());
      }
    }
    if (names.contains("input_ids")) {
      return TEXT_ENCODER;
    }
    // A ControlNet has the UNet's inputs too; its control image tells it apart.
    if (names.contains("controlnet_cond")) {
      return CONTROLNET;
    }
    if (names.contains("sample") && (names.contains("timestep") || names.contains("encoder_hidden_states"))) {
      return UNET;
    }
    if (names.contains("latent_sample")) {
      return VAE_DECODER;
    }
    if (names.contains("sample")) {
      return VAE_ENCODER;
    }
    return OTHER;
  }

  /** Spatial sizes of the model's image input per pixel of the pipeline's image (latents are 1/8). */
  public int imageScale() {
    return this == UNET || this == CONTROLNET || this == VAE_DECODER ? 8 : 1;
  }

  /** The multiple the model's spatial input sizes must be (three stride-2 stages in SD UNets and VAE encoders). */
  public int spatialMultiple() {
    return this == UNET || this == CONTROLNET || this == VAE_ENCODER ? 8 : 1;
  }

  public String label() {
    return name().toLowerCase(Locale.ROOT).replace('_', '-');
  }
}
