package dev.kiln.runner.pipeline;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.common.KilnException;
import dev.kiln.runner.InvalidRequest;
import dev.kiln.runner.image.PngWriter;
import dev.kiln.runner.image.RgbImage;
import dev.kiln.runner.scheduler.SchedulerKind;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * ControlNet in the runner on the tiny ControlNet pipeline (testdata/pipelines/tiny-sd-controlnet: tiny-sd's
 * components, its UNet exported with the residual inputs, and a ControlNet trained to place the shape where the
 * control image's mask is): zero residuals are the plain pipeline, scales and several ControlNets follow diffusers'
 * arithmetic, guess mode feeds what diffusers feeds, and every scheduler, batch and img2img run with control.
 */
class ControlNetPipelineTest {
  static final Path ROOT = Path.of(System.getProperty("kiln.root", ".."));
  static final Path CONTROL_PIPELINE = ROOT.resolve("testdata/pipelines/tiny-sd-controlnet");
  static final Path PLAIN_PIPELINE = ROOT.resolve("testdata/pipelines/tiny-sd");
  static final String PROMPT = "a red circle on a white background";

  static StableDiffusionPipeline control;
  /** The same pipeline with its own ControlNet added a second time (two ControlNets: the same net twice). */
  static StableDiffusionPipeline doubled;

  @BeforeAll
  static void open() {
    control = StableDiffusionPipeline.open(PipelineFolder.open(CONTROL_PIPELINE), Device.CPU, 1, line -> {});
    doubled = StableDiffusionPipeline.open(PipelineFolder.open(CONTROL_PIPELINE), Device.CPU, 1, line -> {},
        List.of(CONTROL_PIPELINE.resolve("controlnet")));
  }

  @AfterAll
  static void close() {
    control.close();
    doubled.close();
  }

  /** A control image as the fixture was trained on: black, the shape's filled mask in white, 4x4-supersampled edges. */
  static RgbImage disc(int width, int height, double centreX, double centreY, double radius) {
    byte[] pixels = new byte[width * height * 3];
    for (int y = 0; y < height; y++) {
      for (int x = 0; x < width; x++) {
        int covered = 0;
        for (int sub = 0; sub < 16; sub++) {
          double px = x + (sub % 4 + 0.5) / 4;
          double py = y + (sub / 4 + 0.5) / 4;
          if ((px - centreX) * (px - centreX) + (py - centreY) * (py - centreY) <= radius * radius) {
            covered++;
          }
        }
        byte level = (byte) Math.round(covered * 255 / 16.0);
        int offset = (y * width + x) * 3;
        pixels[offset] = level;
        pixels[offset + 1] = level;
        pixels[offset + 2] = level;
      }
    }
    return new RgbImage(width, height, pixels);
  }

  static final RgbImage LEFT_DISC = disc(64, 64, 18, 40, 15);

  static GenerationRequest request(long seed, int steps) {
    return GenerationRequest.of(PROMPT, seed).withScheduler(SchedulerKind.DDIM).withSteps(steps);
  }

  static GenerationRequest controlled(GenerationRequest request, double scale) {
    return request.withControls(List.of(new ControlImage(LEFT_DISC, scale, "left disc")), false);
  }

  static double meanAbsoluteDifference(RgbImage first, RgbImage second) {
    long total = 0;
    for (int index = 0; index < first.pixels().length; index++) {
      total += Math.abs((first.pixels()[index] & 0xff) - (second.pixels()[index] & 0xff));
    }
    return (double) total / first.pixels().length;
  }

  static double maxAbsoluteDifference(float[] first, float[] second) {
    double worst = 0;
    for (int index = 0; index < first.length; index++) {
      worst = Math.max(worst, Math.abs(first[index] - second[index]));
    }
    return worst;
  }

  /**
   * Against the Python reference run (testdata/pipelines/tiny-sd-controlnet/reference: diffusers' ControlNet step,
   * DDIM 20 steps, guidance 7.5, seed 0, the control PNG read through the runner's image reader): the ControlNet's
   * residuals at the first step, the latents after every step and the image.
   */
  @Test
  void javaReproducesTheDiffusersControlNetReference() throws Exception {
    Path reference = CONTROL_PIPELINE.resolve("reference");
    RgbImage image = RgbImage.read(reference.resolve("control_image.png"), "control image");
    float[] cond = Npy.read(reference.resolve("controlnet_cond.npy")).floats();
    assertArrayEquals(cond, StableDiffusionPipeline.controlTensor(image).data(), "controlnet_cond = pixels / 255 exactly");
    Map<String, ModelInput> first = new LinkedHashMap<>();
    List<float[]> perStep = new ArrayList<>();
    GenerationResult result = control.generate(GenerationRequest.of("a blue triangle on a gray background", 0).withScheduler(SchedulerKind.DDIM)
        .withSteps(20).withGuidance(7.5).withControls(List.of(new ControlImage(image, 1, "control_image.png")), false), new StepListener() {
          @Override
          public void unetInputs(int step, Map<String, ModelInput> inputs) {
            if (step == 0) {
              first.putAll(inputs);
            }
          }

          @Override
          public void latentsAfterStep(int step, float[] latents) {
            perStep.add(latents.clone());
          }
        });
    double residuals = 0;
    for (int index = 0; index < 5; index++) {
      String file = index < 4 ? "first_step_down_block_res_samples_" + index + ".npy" : "first_step_mid_block_res_sample.npy";
      ModelInput fed = first.get(index < 4 ? Unet.DOWN_RESIDUAL + index : Unet.MID_RESIDUAL);
      residuals = Math.max(residuals, maxAbsoluteDifference(Npy.read(reference.resolve(file)).floats(), (float[]) fed.data()));
    }
    float[] expectedSteps = Npy.read(reference.resolve("latents_per_step.npy")).floats();
    int size = perStep.get(0).length;
    double steps = 0;
    for (int step = 0; step < 20; step++) {
      steps = Math.max(steps, maxAbsoluteDifference(java.util.Arrays.copyOfRange(expectedSteps, step * size, (step + 1) * size), perStep.get(step)));
    }
    RgbImage expectedImage = RgbImage.read(reference.resolve("image.png"), "reference image");
    int worstPixel = 0;
    for (int index = 0; index < expectedImage.pixels().length; index++) {
      worstPixel = Math.max(worstPixel, Math.abs((expectedImage.pixels()[index] & 0xff) - (result.images().get(0).pixels()[index] & 0xff)));
    }
    String report = String.format(Locale.ROOT, "ControlNet reference: first-step residuals max|diff| %.2e, latents over 20 steps %.2e, image max %d/255",
        residuals, steps, worstPixel);
    System.out.println(report);
    assertTrue(residuals < 1e-4, report);
    assertTrue(steps < 2e-3, report);
    assertTrue(worstPixel <= 2, report);
  }

  @Test
  void withoutControlTheResidualUnetIsThePlainPipelineExactly() {
    try (StableDiffusionPipeline plain = StableDiffusionPipeline.open(PipelineFolder.open(PLAIN_PIPELINE), Device.CPU, 1, line -> {})) {
      for (long seed : new long[] {0, 5}) {
        GenerationResult expected = plain.generate(request(seed, 10));
        List<Map<String, ModelInput>> fed = new ArrayList<>();
        GenerationResult actual = control.generate(request(seed, 10), new StepListener() {
          @Override
          public void unetInputs(int step, Map<String, ModelInput> inputs) {
            fed.add(inputs);
          }
        });
        assertArrayEquals(expected.finalLatents().data(), actual.finalLatents().data(), "seed " + seed);
        assertArrayEquals(expected.images().get(0).pixels(), actual.images().get(0).pixels(), "seed " + seed);
        // The residual inputs were fed, as zeros of the UNet's skip shapes (8x8 latents: 32, 32, 32@4x4, 64@4x4; mid 64@4x4).
        assertEquals(10, fed.size());
        long[][] shapes = {{2, 32, 8, 8}, {2, 32, 8, 8}, {2, 32, 4, 4}, {2, 64, 4, 4}, {2, 64, 4, 4}};
        for (int index = 0; index < shapes.length; index++) {
          ModelInput residual = fed.get(0).get(index < 4 ? Unet.DOWN_RESIDUAL + index : Unet.MID_RESIDUAL);
          assertArrayEquals(shapes[index], residual.shape(), "residual " + index);
          for (float value : (float[]) residual.data()) {
            assertEquals(0f, value);
          }
        }
      }
    }
  }

  @Test
  void controlScaleZeroIsNoControlAndScaleOneChangesTheImage() {
    GenerationResult none = control.generate(request(3, 10));
    GenerationResult zero = control.generate(controlled(request(3, 10), 0));
    GenerationResult one = control.generate(controlled(request(3, 10), 1));
    assertArrayEquals(none.finalLatents().data(), zero.finalLatents().data());
    assertArrayEquals(none.images().get(0).pixels(), zero.images().get(0).pixels());
    double changed = meanAbsoluteDifference(none.images().get(0), one.images().get(0));
    System.out.printf(Locale.ROOT, "control scale 1 vs none: mean |pixel difference| %.2f of 255%n", changed);
    assertTrue(changed > 2, "the control must change the image, mean |difference| " + changed);
    assertTrue(one.timings().stages().containsKey("controlnet"), one.timings().stages().keySet().toString());
  }

  @Test
  void twoControlNetsSumTheirResidualsLikeOneAtTheSummedScale() {
    assertEquals(2, doubled.controlNets().size());
    // 0.25 and 0.5 are powers of two: r * 0.25 + r * 0.5 and r * 0.75 are both the one rounding of 0.75 r, bit for bit.
    GenerationRequest pair = request(4, 8).withControls(List.of(new ControlImage(LEFT_DISC, 0.25, "a"), new ControlImage(LEFT_DISC, 0.5, "b")), false);
    GenerationResult summed = doubled.generate(pair);
    GenerationResult single = control.generate(controlled(request(4, 8), 0.75));
    assertArrayEquals(single.finalLatents().data(), summed.finalLatents().data());
    // Other scales agree to float rounding.
    GenerationResult unevenPair = doubled.generate(request(4, 8).withControls(List.of(new ControlImage(LEFT_DISC, 0.3, "a"),
        new ControlImage(LEFT_DISC, 0.9, "b")), false));
    GenerationResult unevenSingle = control.generate(controlled(request(4, 8), 1.2));
    double difference = maxAbsoluteDifference(unevenSingle.finalLatents().data(), unevenPair.finalLatents().data());
    System.out.printf(Locale.ROOT, "two ControlNets at 0.3 + 0.9 vs one at 1.2: max |latent difference| %.3g%n", difference);
    assertTrue(difference < 1e-4, "max |latent difference| " + difference);
    // And the second net's own image is used: another image on it changes what the UNet gets.
    Map<String, ModelInput> same = firstResiduals(doubled, pair);
    Map<String, ModelInput> other = firstResiduals(doubled, request(4, 8).withControls(List.of(new ControlImage(LEFT_DISC, 0.25, "a"),
        new ControlImage(disc(64, 64, 46, 20, 15), 0.5, "b")), false));
    double moved = maxAbsoluteDifference((float[]) same.get(Unet.DOWN_RESIDUAL + 0).data(), (float[]) other.get(Unet.DOWN_RESIDUAL + 0).data());
    assertTrue(moved > 1e-3, "the second image changed the residuals by only " + moved);
  }

  /** The residuals the UNet got at step 0, by input name. */
  static Map<String, ModelInput> firstResiduals(StableDiffusionPipeline pipeline, GenerationRequest request) {
    Map<String, ModelInput> first = new LinkedHashMap<>();
    pipeline.generate(request, new StepListener() {
      @Override
      public void unetInputs(int step, Map<String, ModelInput> inputs) {
        if (first.isEmpty()) {
          inputs.forEach((name, value) -> {
            if (name.contains("residual")) {
              first.put(name, value);
            }
          });
        }
      }
    });
    return first;
  }

  @Test
  void guessModeZeroesTheUnconditionalHalfAndScalesByDepth() {
    double scale = 0.8;
    Map<String, ModelInput> normal = firstResiduals(control, controlled(request(2, 4), scale));
    Map<String, ModelInput> guess = firstResiduals(control, controlled(request(2, 4), scale).withControls(
        List.of(new ControlImage(LEFT_DISC, scale, "left disc")), true));
    assertEquals(5, guess.size());
    // logspace(-1, 0, 5): down_0 .. down_3, mid.
    double[] depth = {0.1, Math.pow(10, -0.75), Math.pow(10, -0.5), Math.pow(10, -0.25), 1};
    for (int index = 0; index < depth.length; index++) {
      String name = index < 4 ? Unet.DOWN_RESIDUAL + index : Unet.MID_RESIDUAL;
      float[] guessed = (float[]) guess.get(name).data();
      float[] plain = (float[]) normal.get(name).data();
      assertEquals(2, guess.get(name).shape()[0], name);
      int half = guessed.length / 2;
      double conditionalMagnitude = 0;
      double worst = 0;
      double largest = 0;
      for (int element = 0; element < half; element++) {
        assertEquals(0f, guessed[element], name + " unconditional row");
        conditionalMagnitude += Math.abs(guessed[half + element]);
        // Same latents, prompt embedding and image at step 0: the conditional row is the plain residual times the depth scale.
        double expected = plain[half + element] / scale * depth[index] * scale;
        worst = Math.max(worst, Math.abs(guessed[half + element] - expected));
        largest = Math.max(largest, Math.abs(expected));
      }
      assertTrue(conditionalMagnitude > 0, name + " conditional row is all zeros");
      assertTrue(worst <= 1e-5 * largest, name + ": max |difference| " + worst + " of " + largest);
      // Without guess mode both halves get the control.
      double unconditionalPlain = 0;
      for (int element = 0; element < half; element++) {
        unconditionalPlain += Math.abs(plain[element]);
      }
      assertTrue(unconditionalPlain > 0, name);
    }
  }

  @Test
  void sameSeedGivesByteIdenticalPngs() {
    GenerationResult first = control.generate(controlled(request(9, 8), 1));
    GenerationResult second = control.generate(controlled(request(9, 8), 1));
    byte[] firstPng = PngWriter.encode(first.images().get(0), Map.of("parameters", first.parameters().get(0)));
    byte[] secondPng = PngWriter.encode(second.images().get(0), Map.of("parameters", second.parameters().get(0)));
    assertArrayEquals(firstPng, secondPng);
    assertTrue(first.parameters().get(0).contains(", ControlNet 0: \"Model: controlnet, Weight: 1, Resize Mode: Just Resize, Guess Mode: False\""),
        first.parameters().get(0));
  }

  @Test
  void batchOfTwoAndImg2imgRunWithControl() {
    List<Integer> rows = new ArrayList<>();
    GenerationResult batch = control.generate(controlled(request(6, 6), 1).withBatch(2), new StepListener() {
      @Override
      public void unetInputs(int step, Map<String, ModelInput> inputs) {
        rows.add((int) inputs.get(Unet.MID_RESIDUAL).shape()[0]);
      }
    });
    assertEquals(2, batch.images().size());
    assertEquals(List.of(4, 4, 4, 4, 4, 4), rows, "2 images x 2 guidance halves");
    assertTrue(meanAbsoluteDifference(batch.images().get(0), batch.images().get(1)) > 1, "each row has its own noise");
    GenerationResult batchWithout = control.generate(request(6, 6).withBatch(2));
    assertTrue(meanAbsoluteDifference(batch.images().get(1), batchWithout.images().get(1)) > 1, "the control reaches the second row");

    RgbImage init = control.generate(request(1, 6)).images().get(0);
    List<Integer> steps = new ArrayList<>();
    StepListener counter = new StepListener() {
      @Override
      public void unetInputs(int step, Map<String, ModelInput> inputs) {
        steps.add(step);
      }
    };
    GenerationResult edited = control.generate(controlled(request(2, 10), 1).withInitImage(init, 0.6), counter);
    assertEquals(6, steps.size(), "strength 0.6 of 10 steps");
    GenerationResult editedWithout = control.generate(request(2, 10).withInitImage(init, 0.6));
    assertTrue(meanAbsoluteDifference(edited.images().get(0), editedWithout.images().get(0)) > 1);
  }

  @Test
  void everySchedulerRunsWithControl() {
    StringBuilder table = new StringBuilder();
    for (SchedulerKind kind : SchedulerKind.values()) {
      GenerationRequest base = GenerationRequest.of(PROMPT, 1).withScheduler(kind).withSteps(6);
      GenerationResult with = control.generate(base.withControls(List.of(new ControlImage(LEFT_DISC, 1, "left disc")), false));
      GenerationResult without = control.generate(base);
      double changed = meanAbsoluteDifference(with.images().get(0), without.images().get(0));
      table.append(String.format(Locale.ROOT, "%-16s %6.2f%n", kind.cliName(), changed));
      for (float value : with.finalLatents().data()) {
        assertTrue(Float.isFinite(value), kind.cliName());
      }
      assertTrue(changed > 0.5, kind.cliName() + ": control changed the image by only " + changed);
    }
    System.out.print("mean |pixel difference| with vs without control, 6 steps:\n" + table);
  }

  @Test
  void controlsThePipelineCannotHonourAreRefused() {
    try (StableDiffusionPipeline plain = StableDiffusionPipeline.open(PipelineFolder.open(PLAIN_PIPELINE), Device.CPU, 1, line -> {})) {
      InvalidRequest none = assertThrows(InvalidRequest.class, () -> plain.generate(controlled(request(0, 2), 1)));
      assertEquals("controls", none.field());
      assertTrue(none.problem().contains("tiny-sd has no controlnet/model.onnx"), none.problem());
    }
    InvalidRequest count = assertThrows(InvalidRequest.class, () -> control.generate(request(0, 2).withControls(
        List.of(new ControlImage(LEFT_DISC, 1, "a"), new ControlImage(LEFT_DISC, 1, "b")), false)));
    assertTrue(count.problem().startsWith("must give one control image per ControlNet: 1 ControlNet"), count.problem());
    for (double scale : new double[] {Double.NaN, -0.5, 11, Double.POSITIVE_INFINITY}) {
      InvalidRequest bad = assertThrows(InvalidRequest.class, () -> control.generate(controlled(request(0, 2), scale)));
      assertEquals("controlScale", bad.field());
      assertTrue(bad.problem().contains("(for left disc)"), bad.problem());
    }
    assertEquals("guessMode", assertThrows(InvalidRequest.class, () -> control.generate(request(0, 2).withControls(List.of(), true))).field());
  }

  @Test
  void aControlNetThatDoesNotFitItsUnetIsRefusedWhenOpened() {
    // The UNet is not a ControlNet: no controlnet_cond input.
    KilnException unet = assertThrows(KilnException.class, () -> StableDiffusionPipeline.open(PipelineFolder.open(CONTROL_PIPELINE),
        Device.CPU, 1, line -> {}, List.of(CONTROL_PIPELINE.resolve("unet"))));
    assertTrue(unet.getMessage().contains("has no 'controlnet_cond' input"), unet.getMessage());
    // A ControlNet on a UNet without residual inputs.
    KilnException plain = assertThrows(KilnException.class, () -> StableDiffusionPipeline.open(PipelineFolder.open(PLAIN_PIPELINE),
        Device.CPU, 1, line -> {}, List.of(CONTROL_PIPELINE.resolve("controlnet"))));
    assertTrue(plain.getMessage().contains("cannot drive unet"), plain.getMessage());
    KilnException missing = assertThrows(KilnException.class, () -> StableDiffusionPipeline.open(PipelineFolder.open(CONTROL_PIPELINE),
        Device.CPU, 1, line -> {}, List.of(CONTROL_PIPELINE.resolve("tokenizer"))));
    assertTrue(missing.getMessage().contains("tokenizer has no model.onnx"), missing.getMessage());
  }

  @Test
  void controlImageSetsTheDefaultSizeAndIsResizedToAnother() {
    GenerationResult fromImage = control.generate(request(0, 2).withControls(List.of(new ControlImage(disc(48, 32, 20, 16, 10), 1, "wide")), false));
    assertEquals(48, fromImage.width());
    assertEquals(32, fromImage.height());
    GenerationResult resized = control.generate(request(0, 2).withSize(64, 64).withControls(List.of(new ControlImage(disc(32, 32, 9, 20, 7), 1, "small")), false));
    assertEquals(64, resized.images().get(0).width());
    Tensor tensor = StableDiffusionPipeline.controlTensor(disc(32, 32, 9, 20, 7).resized(64, 64));
    assertArrayEquals(new long[] {1, 3, 64, 64}, tensor.shape());
    assertEquals(1f, tensor.data()[40 * 64 + 18], "inside the disc: white is 1");
    assertEquals(0f, tensor.data()[2 * 64 * 64 + 5 * 64 + 60], "outside: black is 0, not -1");
    assertNotEquals(0f, StableDiffusionPipeline.guessFactors(5, 1)[0]);
    assertEquals(0.1f, StableDiffusionPipeline.guessFactors(5, 1)[0], 1e-7);
    assertEquals(1f, StableDiffusionPipeline.guessFactors(5, 1)[4], 0f);
  }
}
