package dev.kiln.validator.report;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.common.AtomicFiles;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The HTML report as a real browser shows it: Debian's headless Chromium (CI installs it, see .ci/run) parses
 * the page into the tables we wrote and paints the red verdict.
 */
class HtmlInChromiumTest {
  private static final Path CHROMIUM = Path.of("/usr/bin/chromium");

  private static String chromium(Path folder, String... arguments) throws IOException, InterruptedException {
    assertTrue(Files.isExecutable(CHROMIUM), "Debian's chromium is needed: apt-get install -y chromium");
    List<String> command = new ArrayList<>(List.of(CHROMIUM.toString(), "--headless", "--no-sandbox", "--disable-gpu",
        "--disable-background-networking", "--disable-component-update", "--no-first-run",
        "--user-data-dir=" + folder.resolve("profile")));
    command.addAll(List.of(arguments));
    Process process = new ProcessBuilder(command).redirectError(ProcessBuilder.Redirect.DISCARD).start();
    byte[] out = process.getInputStream().readAllBytes();
    assertTrue(process.waitFor(90, TimeUnit.SECONDS), "chromium did not finish");
    return new String(out, StandardCharsets.UTF_8);
  }

  @Test
  void chromiumParsesTheTablesAndPaintsTheVerdict(@TempDir Path folder) throws Exception {
    ValidationReport report = ReportFormatsTest.failingReport();
    report.getComponents().get(0).errorSamples().put("out_sample", new double[] {1e-7, 2e-6, 3e-3});
    Path page = folder.resolve("report.html");
    AtomicFiles.writeString(page, HtmlReport.write(report));
    String dom = chromium(folder, "--dump-dom", page.toUri().toString());
    assertEquals(4, dom.split("<tr><td>", -1).length - 1, dom);
    assertTrue(dom.contains("<svg"), dom);
    assertTrue(dom.contains("holds only for latent height 32"), dom);

    Path screenshot = folder.resolve("report.png");
    chromium(folder, "--window-size=1200,800", "--screenshot=" + screenshot, page.toUri().toString());
    BufferedImage image = ImageIO.read(screenshot.toFile());
    assertEquals(1200, image.getWidth());
    int red = 0;
    for (int y = 0; y < 120; y++) {
      for (int x = 0; x < 600; x++) {
        int rgb = image.getRGB(x, y);
        if (((rgb >> 16) & 0xff) > 150 && ((rgb >> 8) & 0xff) < 80 && (rgb & 0xff) < 80) {
          red++;
        }
      }
    }
    assertTrue(red > 200, "the red FAILED verdict is painted at the top (" + red + " red pixels)");
  }
}
