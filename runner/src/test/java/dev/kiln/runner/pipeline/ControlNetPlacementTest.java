package dev.kiln.runner.pipeline;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.runner.image.RgbImage;
import dev.kiln.runner.scheduler.SchedulerKind;
import dev.kiln.testdata.ImageJudge;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The trained tiny ControlNet does its job through Kiln's runner: with a control image holding the shape's mask at a
 * position, the generated shape's centroid lands within 8 px of the mask's, whatever the prompt says; without the
 * control image it lands elsewhere (so the control, not the prompt or the seed, placed it).
 */
class ControlNetPlacementTest {
  static StableDiffusionPipeline pipeline;

  @BeforeAll
  static void open() {
    pipeline = StableDiffusionPipeline.open(PipelineFolder.open(ControlNetPipelineTest.CONTROL_PIPELINE), Device.CPU, 0, line -> {});
  }

  @AfterAll
  static void close() {
    pipeline.close();
  }

  /** The fixture's control image: black, the shape's filled mask (radius 15) in white, edges from 4x4-supersampled coverage. */
  static RgbImage mask(ImageJudge.Shape shape, double centreX, double centreY) {
    byte[] pixels = new byte[64 * 64 * 3];
    for (int y = 0; y < 64; y++) {
      for (int x = 0; x < 64; x++) {
        int covered = 0;
        for (int sub = 0; sub < 16; sub++) {
          covered += shape.contains(centreX, centreY, 15, x + (sub % 4 + 0.5) / 4, y + (sub / 4 + 0.5) / 4) ? 1 : 0;
        }
        java.util.Arrays.fill(pixels, (y * 64 + x) * 3, (y * 64 + x) * 3 + 3, (byte) Math.round(covered * 255 / 16.0));
      }
    }
    return new RgbImage(64, 64, pixels);
  }

  /** Intensity-weighted centroid {x, y} of a grey mask, in pixel-centre coordinates. */
  static double[] maskCentroid(RgbImage mask) {
    double total = 0;
    double sumX = 0;
    double sumY = 0;
    for (int y = 0; y < mask.height(); y++) {
      for (int x = 0; x < mask.width(); x++) {
        double weight = mask.red(x, y);
        total += weight;
        sumX += weight * (x + 0.5);
        sumY += weight * (y + 0.5);
      }
    }
    return new double[] {sumX / total, sumY / total};
  }

  /**
   * Centroid {x, y} of the largest 4-connected region that differs from the background (the border's median colour)
   * by more than half the largest difference, as ImageJudge segments its foreground; null when nothing stands out.
   */
  static double[] shapeCentroid(RgbImage image) {
    int width = image.width();
    int height = image.height();
    int border = 2;
    double[] background = new double[3];
    for (int channel = 0; channel < 3; channel++) {
      List<Integer> values = new ArrayList<>();
      for (int y = 0; y < height; y++) {
        for (int x = 0; x < width; x++) {
          if (y < border || y >= height - border || x < border || x >= width - border) {
            values.add(image.pixels()[(y * width + x) * 3 + channel] & 0xff);
          }
        }
      }
      values.sort(null);
      background[channel] = values.get((values.size() - 1) / 2);
    }
    double[] distance = new double[width * height];
    double largest = 0;
    for (int index = 0; index < distance.length; index++) {
      double sum = 0;
      for (int channel = 0; channel < 3; channel++) {
        double difference = (image.pixels()[index * 3 + channel] & 0xff) - background[channel];
        sum += difference * difference;
      }
      distance[index] = Math.sqrt(sum);
      largest = Math.max(largest, distance[index]);
    }
    if (largest < 40) {
      return null;
    }
    double threshold = largest / 2;
    boolean[] seen = new boolean[distance.length];
    double[] best = null;
    int bestArea = 0;
    for (int start = 0; start < distance.length; start++) {
      if (seen[start] || distance[start] <= threshold) {
        continue;
      }
      ArrayDeque<Integer> queue = new ArrayDeque<>(List.of(start));
      seen[start] = true;
      int area = 0;
      double sumX = 0;
      double sumY = 0;
      while (!queue.isEmpty()) {
        int index = queue.poll();
        int x = index % width;
        int y = index / width;
        area++;
        sumX += x + 0.5;
        sumY += y + 0.5;
        int[][] neighbours = {{x - 1, y}, {x + 1, y}, {x, y - 1}, {x, y + 1}};
        for (int[] next : neighbours) {
          int at = next[1] * width + next[0];
          if (next[0] >= 0 && next[0] < width && next[1] >= 0 && next[1] < height && !seen[at] && distance[at] > threshold) {
            seen[at] = true;
            queue.add(at);
          }
        }
      }
      if (area > bestArea) {
        bestArea = area;
        best = new double[] {sumX / area, sumY / area};
      }
    }
    return best;
  }

  record Scene(String prompt, ImageJudge.Shape shape) {}

  @Test
  void theShapeLandsOnTheControlMaskAndElsewhereWithoutIt() {
    List<Scene> scenes = List.of(new Scene("a red circle on a white background", ImageJudge.Shape.CIRCLE),
        new Scene("a blue square on a black background", ImageJudge.Shape.SQUARE));
    double[][] positions = {{20, 24}, {44, 20}, {22, 44}, {42, 40}};
    StringBuilder table = new StringBuilder("scene                                 position  shape centroid  distance  without control\n");
    int hits = 0;
    int total = 0;
    int elsewhere = 0;
    for (Scene scene : scenes) {
      GenerationRequest request = GenerationRequest.of(scene.prompt(), 0).withScheduler(SchedulerKind.DDIM).withSteps(20);
      double[] free = shapeCentroid(pipeline.generate(request).images().get(0));
      for (double[] position : positions) {
        RgbImage control = mask(scene.shape(), position[0], position[1]);
        double[] target = maskCentroid(control);
        double[] found = shapeCentroid(pipeline.generate(request.withControls(List.of(new ControlImage(control, 1, "mask")), false))
            .images().get(0));
        double distance = found == null ? Double.POSITIVE_INFINITY : Math.hypot(found[0] - target[0], found[1] - target[1]);
        double freeDistance = free == null ? Double.POSITIVE_INFINITY : Math.hypot(free[0] - target[0], free[1] - target[1]);
        total++;
        hits += distance <= 8 ? 1 : 0;
        elsewhere += freeDistance > 8 ? 1 : 0;
        table.append(String.format(Locale.ROOT, "%-37s %4.0f,%-4.0f %6.1f,%-6.1f %8.2f  %8.2f%n", scene.prompt(), position[0], position[1],
            found == null ? Double.NaN : found[0], found == null ? Double.NaN : found[1], distance, freeDistance));
      }
    }
    System.out.print(table);
    System.out.printf(Locale.ROOT, "within 8 px: %d/%d with control, %d/%d without%n", hits, total, total - elsewhere, total);
    assertTrue(hits == total, "the shape must land within 8 px of the control's centroid:\n" + table);
    assertTrue(elsewhere == total, "without control the shape must land elsewhere:\n" + table);
  }
}
