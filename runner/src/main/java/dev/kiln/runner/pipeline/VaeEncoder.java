package dev.kiln.runner.pipeline;

import dev.kiln.common.KilnException;
import dev.kiln.runner.image.RgbImage;
import java.util.List;
import java.util.Map;

/**
 * The VAE encoder session for img2img: an RGB image to the scaled posterior mean (the first half of
 * latent_parameters when mean and log-variance come together). Thread-safe.
 */
public final class VaeEncoder implements AutoCloseable {
  private final OnnxModel model;
  private final double scalingFactor;
  private final int latentChannels;

  VaeEncoder(OnnxModel model, double scalingFactor, int latentChannels) {
    this.model = model;
    this.scalingFactor = scalingFactor;
    this.latentChannels = latentChannels;
  }

  /** The image's latents, repeated {@code batch} times along the first axis. */
  Tensor encode(RgbImage image, int batch, StageTimings timings) {
    int plane = image.width() * image.height();
    float[] pixels = new float[plane * 3];
    for (int pixel = 0; pixel < plane; pixel++) {
      for (int channel = 0; channel < 3; channel++) {
        pixels[channel * plane + pixel] = (image.pixels()[pixel * 3 + channel] & 0xff) / 255.0f * 2.0f - 1.0f;
      }
    }
    String input = model.hasInput("sample") ? "sample" : model.inputs().keySet().iterator().next();
    String output = model.outputs().keySet().iterator().next();
    Tensor encoded = timings.time("vae_encoder", () -> model.run(
        Map.of(input, ModelInput.of(new Tensor(pixels, new long[] {1, 3, image.height(), image.width()}))), List.of(output)).get(output));
    int channels = latentChannels;
    long encodedChannels = encoded.dimension(1);
    if (encodedChannels != channels && encodedChannels != 2L * channels) {
      throw new KilnException.Unsupported("vae_encoder output '" + output + "' has " + encodedChannels + " channels, expected "
          + channels + " (latents) or " + 2 * channels + " (mean and log-variance)");
    }
    int latentPlane = (int) (encoded.dimension(2) * encoded.dimension(3));
    float[] mean = new float[channels * latentPlane];
    float scaling = (float) scalingFactor;
    for (int index = 0; index < mean.length; index++) {
      mean[index] = encoded.data()[index] * scaling;
    }
    return new Tensor(mean, new long[] {1, channels, encoded.dimension(2), encoded.dimension(3)}).repeat(batch);
  }

  @Override
  public void close() {
    model.close();
  }
}
