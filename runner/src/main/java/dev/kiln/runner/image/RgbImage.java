package dev.kiln.runner.image;

import dev.kiln.common.KilnException;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import javax.imageio.ImageIO;

/** An 8-bit RGB image, rows top to bottom, pixels interleaved R, G, B. */
public record RgbImage(int width, int height, byte[] pixels) {
  public RgbImage {
    if (pixels.length != width * height * 3) {
      throw new IllegalArgumentException(width + "x" + height + " RGB needs " + width * height * 3 + " bytes, got " + pixels.length);
    }
  }

  public int red(int x, int y) {
    return pixels[(y * width + x) * 3] & 0xff;
  }

  public int green(int x, int y) {
    return pixels[(y * width + x) * 3 + 1] & 0xff;
  }

  public int blue(int x, int y) {
    return pixels[(y * width + x) * 3 + 2] & 0xff;
  }

  /** Reads a PNG/JPEG/BMP with the JDK's ImageIO; unreadable files are bad input naming the file. */
  public static RgbImage read(Path file) {
    if (!Files.isRegularFile(file)) {
      throw new KilnException.BadInput("init image " + file + " does not exist");
    }
    BufferedImage image;
    try {
      image = ImageIO.read(file.toFile());
    } catch (IOException e) {
      throw new KilnException.BadInput("cannot read init image " + file + ": " + e.getMessage(), e);
    }
    if (image == null) {
      throw new KilnException.BadInput("init image " + file + " is not a PNG, JPEG or BMP image");
    }
    return fromBufferedImage(image);
  }

  static RgbImage fromBufferedImage(BufferedImage image) {
    int width = image.getWidth();
    int height = image.getHeight();
    byte[] pixels = new byte[width * height * 3];
    for (int y = 0; y < height; y++) {
      for (int x = 0; x < width; x++) {
        int argb = image.getRGB(x, y);
        int offset = (y * width + x) * 3;
        pixels[offset] = (byte) (argb >> 16);
        pixels[offset + 1] = (byte) (argb >> 8);
        pixels[offset + 2] = (byte) argb;
      }
    }
    return new RgbImage(width, height, pixels);
  }

  /** Bilinear resize (img2img inputs of another size), deterministic for the same input. */
  public RgbImage resized(int newWidth, int newHeight) {
    if (newWidth == width && newHeight == height) {
      return this;
    }
    BufferedImage source = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
    for (int y = 0; y < height; y++) {
      for (int x = 0; x < width; x++) {
        source.setRGB(x, y, (red(x, y) << 16) | (green(x, y) << 8) | blue(x, y));
      }
    }
    BufferedImage target = new BufferedImage(newWidth, newHeight, BufferedImage.TYPE_INT_RGB);
    java.awt.Graphics2D graphics = target.createGraphics();
    graphics.setRenderingHint(RenderingHints.KEY_INTERPOLATION, RenderingHints.VALUE_INTERPOLATION_BILINEAR);
    graphics.drawImage(source, 0, 0, newWidth, newHeight, null);
    graphics.dispose();
    return fromBufferedImage(target);
  }
}
