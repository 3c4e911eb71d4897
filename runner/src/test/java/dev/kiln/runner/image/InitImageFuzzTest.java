package dev.kiln.runner.image;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.kiln.common.KilnException;
import dev.kiln.testdata.FuzzFolder;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import org.junit.jupiter.api.Test;

/**
 * Fuzz target for the init-image reader of img2img ({@code --init-image}): the file is read as
 * {@code kiln generate} reads it and resized to the tiny pipeline's 64x64, as the pipeline does before encoding.
 * Only a {@link KilnException} may come out; ImageIO's own IllegalArgumentException, IndexOutOfBounds or
 * OutOfMemoryError on a hostile header are findings. Seeds: small PNGs of every colour type, bit depth and
 * interlacing (made by {@code src/test/python/fuzz_seeds.py}) and the tiny pipeline's reference image. How
 * targets are run and added: see {@code bench/fuzz.sh}.
 */
class InitImageFuzzTest {
  private static final FuzzFolder FOLDER = FuzzFolder.create("image");

  @FuzzTest(maxDuration = "10m")
  void png(byte[] input) {
    FOLDER.reset();
    try {
      RgbImage image = RgbImage.read(FOLDER.write("init.png", input));
      RgbImage resized = image.resized(64, 64);
      if (resized.pixels().length != 64 * 64 * 3) {
        throw new AssertionError("resized to " + resized.width() + "x" + resized.height());
      }
    } catch (KilnException expected) {
      // The contract: an unreadable image is refused with a typed error naming the file.
    }
  }

  /** Finding: a 69-byte PNG claiming 20000x20000 made ImageIO allocate 1.2 GB (5 s; OutOfMemoryError on a smaller heap). */
  @Test
  void hugeClaimedSizeIsRefusedFromTheHeaderBeforeDecoding() {
    FOLDER.reset();
    byte[] input;
    try (InputStream stream = InitImageFuzzTest.class.getResourceAsStream("InitImageFuzzTestInputs/png/claims-20000x20000.png")) {
      input = stream.readAllBytes();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    String message = assertThrows(KilnException.BadInput.class, () -> RgbImage.read(FOLDER.write("init.png", input))).getMessage();
    assertTrue(message.contains("init.png is 20000x20000; Kiln reads init images of 1 to 67108864 pixels"), message);
  }
}
