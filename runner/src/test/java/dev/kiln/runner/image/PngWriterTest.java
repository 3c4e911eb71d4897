package dev.kiln.runner.image;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.Random;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;

/** The PNG encoder: decodable by the JDK with exact pixels, deterministic, text chunks read back. */
class PngWriterTest {
  static RgbImage noise(int width, int height, long seed) {
    byte[] pixels = new byte[width * height * 3];
    new Random(seed).nextBytes(pixels);
    return new RgbImage(width, height, pixels);
  }

  @Test
  void jdkDecodesTheExactPixels() throws Exception {
    RgbImage image = noise(37, 21, 1);
    byte[] png = PngWriter.encode(image, Map.of("parameters", "a red circle\nSteps: 20"));
    BufferedImage decoded = ImageIO.read(new ByteArrayInputStream(png));
    assertEquals(37, decoded.getWidth());
    assertEquals(21, decoded.getHeight());
    assertArrayEquals(image.pixels(), RgbImage.fromBufferedImage(decoded).pixels());
  }

  @Test
  void sameInputSameBytesAndTextRoundTrips() {
    RgbImage image = noise(16, 16, 2);
    byte[] first = PngWriter.encode(image, Map.of("parameters", "café, 4k"));
    assertArrayEquals(first, PngWriter.encode(image, Map.of("parameters", "café, 4k")));
    assertTrue(new String(first, StandardCharsets.ISO_8859_1).contains("tEXtparameters"));
    assertEquals("café, 4k", PngText.read(first).get("parameters"));
    byte[] unicode = PngWriter.encode(image, Map.of("parameters", "a cat 🐱 日本"));
    assertTrue(new String(unicode, StandardCharsets.ISO_8859_1).contains("iTXtparameters"));
    assertEquals("a cat 🐱 日本", PngText.read(unicode).get("parameters"));
    assertFalse(java.util.Arrays.equals(first, PngWriter.encode(noise(16, 16, 3), Map.of("parameters", "café, 4k"))));
  }

  @Test
  void resizeKeepsFlatColoursFlat() {
    byte[] pixels = new byte[8 * 8 * 3];
    for (int index = 0; index < pixels.length; index += 3) {
      pixels[index] = (byte) 220;
      pixels[index + 1] = 30;
      pixels[index + 2] = 30;
    }
    RgbImage resized = new RgbImage(8, 8, pixels).resized(20, 12);
    assertEquals(20, resized.width());
    assertEquals(12, resized.height());
    assertEquals(220, resized.red(10, 6));
    assertEquals(30, resized.green(19, 11));
  }
}
