package dev.kiln.runner.pipeline;

import dev.kiln.runner.image.RgbImage;
import java.util.List;
import java.util.Map;

/** The VAE decoder session: scaled latents of one image to 8-bit RGB, as diffusers rounds them. Thread-safe. */
public final class VaeDecoder implements AutoCloseable {
  private final OnnxModel model;
  private final double scalingFactor;
  private final String input;
  private final String output;

  VaeDecoder(OnnxModel model, double scalingFactor) {
    this.model = model;
    this.scalingFactor = scalingFactor;
    this.input = model.hasInput("latent_sample") ? "latent_sample" : model.inputs().keySet().iterator().next();
    this.output = model.outputs().containsKey("sample") ? "sample" : model.outputs().keySet().iterator().next();
  }

  RgbImage decode(Tensor latents) {
    float[] scaled = latents.data().clone();
    float inverse = (float) (1.0 / scalingFactor);
    for (int index = 0; index < scaled.length; index++) {
      scaled[index] *= inverse;
    }
    Tensor image = model.run(Map.of(input, ModelInput.of(new Tensor(scaled, latents.shape()))), List.of(output)).get(output);
    int height = (int) image.dimension(2);
    int width = (int) image.dimension(3);
    int plane = width * height;
    float[] data = image.data();
    byte[] pixels = new byte[plane * 3];
    for (int pixel = 0; pixel < plane; pixel++) {
      for (int channel = 0; channel < 3; channel++) {
        // diffusers: (x / 2 + 0.5).clamp(0, 1), then (x * 255).round()
        double value = Math.min(1.0, Math.max(0.0, data[channel * plane + pixel] / 2.0 + 0.5));
        pixels[pixel * 3 + channel] = (byte) Math.rint(value * 255.0);
      }
    }
    return new RgbImage(width, height, pixels);
  }

  @Override
  public void close() {
    model.close();
  }
}
