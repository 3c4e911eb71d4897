package dev.kiln.optimizer.profiles;

import dev.kiln.common.KilnException;
import dev.kiln.graph.Graph;
import dev.kiln.graph.Value;
import java.util.HashSet;
import java.util.Set;

/** Which part of a Stable Diffusion pipeline a model is, detected from its input and output names. */
public enum Component {
  TEXT_ENCODER("text-encoder"),
  UNET("unet"),
  /** A ControlNet: the UNet's encoder half plus the control-image embedding; fused as the UNet's encoder is. */
  CONTROLNET("controlnet"),
  VAE_DECODER("vae-decoder"),
  VAE_ENCODER("vae-encoder");

  private final String id;

  Component(String id) {
    this.id = id;
  }

  public String id() {
    return id;
  }

  public static Component parse(String text) {
    for (Component component : values()) {
      if (component.id.equals(text) || component.name().equalsIgnoreCase(text)) {
        return component;
      }
    }
    throw new KilnException.BadInput("unknown component '" + text + "'; expected text-encoder, unet, controlnet, vae-decoder or vae-encoder");
  }

  /**
   * Detects the component from diffusers/Optimum I/O names: {@code input_ids} → text encoder;
   * {@code controlnet_cond} → ControlNet (checked before the UNet: it has the UNet's inputs too);
   * {@code sample} + {@code timestep} (+ {@code encoder_hidden_states}) → UNet (with or without ControlNet
   * residual inputs); {@code latent_sample} in →
   * VAE decoder; {@code sample} in and {@code latent_parameters}/{@code latent_sample} out → VAE encoder.
   */
  public static Component detect(Graph graph, String modelName) {
    Set<String> inputs = new HashSet<>();
    for (Value value : graph.inputs()) {
      if (!value.isInitializer()) {
        inputs.add(value.name());
      }
    }
    Set<String> outputs = new HashSet<>();
    for (Value value : graph.outputs()) {
      outputs.add(value.name());
    }
    if (inputs.contains("input_ids")) {
      return TEXT_ENCODER;
    }
    if (inputs.contains("controlnet_cond")) {
      return CONTROLNET;
    }
    if (inputs.contains("sample") && inputs.contains("timestep")) {
      return UNET;
    }
    if (inputs.contains("latent_sample")) {
      return VAE_DECODER;
    }
    if (inputs.contains("sample") && (outputs.contains("latent_parameters") || outputs.contains("latent_sample")
        || outputs.contains("latent_dist"))) {
      return VAE_ENCODER;
    }
    throw new KilnException.BadInput(modelName + ": cannot tell which pipeline component this is from its inputs "
        + inputs + " and outputs " + outputs + "; pass --component text-encoder|unet|controlnet|vae-decoder|vae-encoder");
  }
}
