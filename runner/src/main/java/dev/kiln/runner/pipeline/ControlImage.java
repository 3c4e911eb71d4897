package dev.kiln.runner.pipeline;

import dev.kiln.runner.image.RgbImage;

/**
 * One ControlNet's condition: its control image (resized to the output size, fed as RGB in [0, 1]), the scale its
 * residuals are multiplied by, and where the image came from (named in messages and the PNG's parameters).
 */
public record ControlImage(RgbImage image, double scale, String source) {
  public ControlImage {
    if (image == null) {
      throw new IllegalArgumentException("a control image is required");
    }
    source = source == null ? "control image" : source;
  }
}
