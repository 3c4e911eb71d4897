package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.awt.image.BufferedImage;
import java.nio.file.Path;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code kiln optimize --static} on the tiny pipeline: the folder records the image size, generates the same image
 * as the dynamic optimization at that size, and refuses another size with one clear line; bad bindings exit 2.
 */
class OptimizeStaticCommandTest {
  static final Path TINY = Path.of(System.getProperty("kiln.root", "..")).resolve("testdata/pipelines/tiny-sd");

  @Test
  void specializedFolderRecordsItsSizeMatchesTheDynamicImageAndRefusesOtherSizes(@TempDir Path folder) throws Exception {
    Path dynamic = folder.resolve("dynamic");
    Path fixed = folder.resolve("static");
    var plain = GenerateCommandTest.run("optimize", TINY.toString(), "-o", dynamic.toString(), "--target", "cpu");
    assertEquals(0, plain.exitCode(), plain.err());
    var specialized = GenerateCommandTest.run("optimize", TINY.toString(), "-o", fixed.toString(), "--target", "cpu",
        "--static", "height=64,width=64,sequence=77", "--json");
    assertEquals(0, specialized.exitCode(), specialized.err());
    JsonNode index = new ObjectMapper().readTree(fixed.resolve("model_index.json").toFile());
    assertEquals(64, index.path("kiln_static").path("height").asInt());
    assertEquals(64, index.path("kiln_static").path("width").asInt());
    assertEquals(77, index.path("kiln_static").path("sequence").asInt());

    Path fromDynamic = folder.resolve("dynamic.png");
    Path fromStatic = folder.resolve("static.png");
    String[] common = {"--prompt", "a red circle", "--steps", "4", "--seed", "5", "--width", "64", "--height", "64"};
    var first = GenerateCommandTest.run(concat(new String[] {"generate", dynamic.toString(), "-o", fromDynamic.toString()}, common));
    assertEquals(0, first.exitCode(), first.err());
    // No --width/--height: a specialized folder defaults to its own size.
    var second = GenerateCommandTest.run("generate", fixed.toString(), "-o", fromStatic.toString(), "--prompt", "a red circle",
        "--steps", "4", "--seed", "5");
    assertEquals(0, second.exitCode(), second.err());
    assertTrue(maxPixelDifference(ImageIO.read(fromDynamic.toFile()), ImageIO.read(fromStatic.toFile())) <= 1,
        "static and dynamic folders give the same image at the bound size");

    var refused = GenerateCommandTest.run("generate", fixed.toString(), "-o", folder.resolve("wide.png").toString(), "--prompt",
        "a red circle", "--steps", "2", "--width", "128", "--height", "64");
    assertEquals(2, refused.exitCode(), refused.err());
    assertTrue(refused.err().contains("specialized to 64x64") && refused.err().strip().lines().count() == 1, refused.err());
  }

  @Test
  void bindingsAFolderCannotTakeExitTwo(@TempDir Path folder) {
    var batch = GenerateCommandTest.run("optimize", TINY.toString(), "-o", folder.resolve("a").toString(), "--target", "cpu",
        "--static", "batch=1");
    assertEquals(2, batch.exitCode(), batch.err());
    assertTrue(batch.err().contains("batch stays dynamic"), batch.err());
    var odd = GenerateCommandTest.run("optimize", TINY.toString(), "-o", folder.resolve("b").toString(), "--target", "cpu",
        "--static", "height=60");
    assertEquals(2, odd.exitCode(), odd.err());
    assertTrue(odd.err().contains("multiple of the VAE factor"), odd.err());
    var malformed = GenerateCommandTest.run("optimize", TINY.resolve("unet/model.onnx").toString(), "-o",
        folder.resolve("u.onnx").toString(), "--target", "cpu", "--static", "height");
    assertEquals(2, malformed.exitCode(), malformed.err());
    var unknown = GenerateCommandTest.run("optimize", TINY.resolve("unet/model.onnx").toString(), "-o",
        folder.resolve("u.onnx").toString(), "--target", "cpu", "--static", "heigth=8");
    assertEquals(2, unknown.exitCode(), unknown.err());
    assertTrue(unknown.err().contains("[heigth]") && unknown.err().contains("height"), unknown.err());
    var limit = GenerateCommandTest.run("optimize", TINY.resolve("unet/model.onnx").toString(), "-o",
        folder.resolve("u.onnx").toString(), "--target", "cpu", "--fold-limit", "lots");
    assertEquals(2, limit.exitCode(), limit.err());
    assertTrue(limit.err().contains("--fold-limit lots: expected a size in bytes"), limit.err());
    var small = GenerateCommandTest.run("optimize", TINY.resolve("unet/model.onnx").toString(), "-o",
        folder.resolve("u.onnx").toString(), "--target", "cpu", "--fold-limit", "64KiB", "--static",
        "batch_size=2,height=8,width=8,sequence_length=77,steps=1");
    assertEquals(0, small.exitCode(), small.err());
  }

  private static String[] concat(String[] first, String[] second) {
    String[] all = java.util.Arrays.copyOf(first, first.length + second.length);
    System.arraycopy(second, 0, all, first.length, second.length);
    return all;
  }

  private static int maxPixelDifference(BufferedImage a, BufferedImage b) {
    assertEquals(a.getWidth(), b.getWidth());
    assertEquals(a.getHeight(), b.getHeight());
    int worst = 0;
    for (int y = 0; y < a.getHeight(); y++) {
      for (int x = 0; x < a.getWidth(); x++) {
        int p = a.getRGB(x, y);
        int q = b.getRGB(x, y);
        for (int shift = 0; shift < 24; shift += 8) {
          worst = Math.max(worst, Math.abs(((p >> shift) & 0xFF) - ((q >> shift) & 0xFF)));
        }
      }
    }
    return worst;
  }
}
