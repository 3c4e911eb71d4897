package dev.kiln.runner.image;

import dev.kiln.common.KilnException;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.stream.ImageInputStream;

/** An 8-bit RGB image, rows top to bottom, pixels interleaved R, G, B. */
public record RgbImage(int width, int height, byte[] pixels) {
  /** The largest init image read: 8192x8192 (its decoded raster and RGB copy are 256 + 192 MB). */
  static final long MAX_PIXELS = 8192L * 8192L;

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

  /** Reads an init image (PNG/JPEG/BMP); unreadable files are bad input naming the file. */
  public static RgbImage read(Path file) {
    return read(file, "init image");
  }

  /**
   * Reads a PNG/JPEG/BMP with the JDK's ImageIO; unreadable files are bad input naming the file as {@code role}
   * ("init image", "control image").
   */
  public static RgbImage read(Path file, String role) {
    if (!Files.isRegularFile(file)) {
      throw new KilnException.BadInput(role + " " + file + " does not exist");
    }
    BufferedImage image;
    // What ImageIO.read does, with the size read from the header and checked before the decoder allocates the
    // raster: a 69-byte PNG claiming 20000x20000 made ImageIO allocate 1.2 GB before finding no data.
    try (ImageInputStream stream = ImageIO.createImageInputStream(file.toFile())) {
      Iterator<ImageReader> readers = stream == null ? null : ImageIO.getImageReaders(stream);
      if (readers == null || !readers.hasNext()) {
        throw new KilnException.BadInput(role + " " + file + " is not a PNG, JPEG or BMP image");
      }
      ImageReader reader = readers.next();
      try {
        reader.setInput(stream, true, true);
        long width = reader.getWidth(0);
        long height = reader.getHeight(0);
        if (width < 1 || height < 1 || width * height > MAX_PIXELS) {
          throw new KilnException.BadInput(role + " " + file + " is " + width + "x" + height + "; Kiln reads " + role + "s of 1 to "
              + MAX_PIXELS + " pixels (8192x8192)");
        }
        image = reader.read(0);
      } finally {
        reader.dispose();
      }
    } catch (KilnException e) {
      throw e;
    } catch (IOException | RuntimeException e) {
      // ImageIO's decoders answer some corrupt files with unchecked exceptions (IllegalArgumentException, index errors).
      throw new KilnException.BadInput("cannot read " + role + " " + file + ": " + e.getMessage(), e);
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
