package dev.kiln.runner.pipeline;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.runner.image.RgbImage;
import dev.kiln.runner.image.ShapePlacement;
import dev.kiln.runner.scheduler.SchedulerKind;
import dev.kiln.testdata.ImageJudge;
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
      double[] free = ShapePlacement.shapeCentroid(pipeline.generate(request).images().get(0));
      for (double[] position : positions) {
        RgbImage control = mask(scene.shape(), position[0], position[1]);
        double[] target = ShapePlacement.maskCentroid(control);
        double[] found = ShapePlacement.shapeCentroid(pipeline.generate(request.withControls(List.of(new ControlImage(control, 1, "mask")), false))
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
