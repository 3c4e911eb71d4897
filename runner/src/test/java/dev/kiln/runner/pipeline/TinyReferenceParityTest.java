package dev.kiln.runner.pipeline;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.runner.noise.TorchGenerator;
import dev.kiln.runner.scheduler.SchedulerKind;
import dev.kiln.runner.tokenizer.ClipTokenizer;
import java.awt.image.BufferedImage;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;

/**
 * Java against the Python reference run of the tiny pipeline (testdata/pipelines/tiny-sd/reference, DDIM 20
 * steps, guidance 7.5, seed 0): ids and initial noise exactly, then every stage within tight tolerances.
 */
class TinyReferenceParityTest {
  static final Path FOLDER = Path.of(System.getProperty("kiln.root", "..")).resolve("testdata/pipelines/tiny-sd");
  static final Path REFERENCE = FOLDER.resolve("reference");
  static final String PROMPT = "a red circle on a white background";

  static double maxDifference(float[] expected, float[] actual) {
    assertEquals(expected.length, actual.length);
    double worst = 0;
    for (int index = 0; index < expected.length; index++) {
      worst = Math.max(worst, Math.abs(expected[index] - actual[index]));
    }
    return worst;
  }

  @Test
  void javaReproducesThePythonReferenceRun() throws Exception {
    ClipTokenizer tokenizer = ClipTokenizer.load(FOLDER.resolve("tokenizer"));
    assertArrayEquals(Npy.read(REFERENCE.resolve("input_ids.npy")).longs(), tokenizer.encode(PROMPT).padded());
    assertArrayEquals(Npy.read(REFERENCE.resolve("uncond_input_ids.npy")).longs(), tokenizer.encode("").padded());
    float[] noise = Npy.read(REFERENCE.resolve("initial_noise.npy")).floats();
    float[] javaNoise = new TorchGenerator(0).randn(noise.length);
    for (int index = 0; index < noise.length; index++) {
      assertEquals(Float.floatToRawIntBits(noise[index]), Float.floatToRawIntBits(javaNoise[index]), "noise element " + index);
    }
    StringBuilder report = new StringBuilder();
    try (StableDiffusionPipeline runner = StableDiffusionPipeline.open(PipelineFolder.open(FOLDER), Device.CPU, 0, line -> {})) {
      List<float[]> stepLatents = new ArrayList<>();
      List<Map<String, ModelInput>> firstInputs = new ArrayList<>();
      GenerationResult result = runner.generate(GenerationRequest.of(PROMPT, 0).withScheduler(SchedulerKind.DDIM).withSteps(20).withGuidance(7.5),
          new StepListener() {
            @Override
            public void unetInputs(int step, Map<String, ModelInput> inputs) {
              if (step == 0) {
                firstInputs.add(new HashMap<>(inputs));
              }
            }

            @Override
            public void latentsAfterStep(int step, float[] latents) {
              stepLatents.add(latents.clone());
            }
          });
      float[] context = PipelineContractTest.floats(firstInputs.get(0).get("encoder_hidden_states"));
      float[] uncond = Npy.read(REFERENCE.resolve("uncond_last_hidden_state.npy")).floats();
      float[] cond = Npy.read(REFERENCE.resolve("last_hidden_state.npy")).floats();
      float[] expectedContext = new float[uncond.length + cond.length];
      System.arraycopy(uncond, 0, expectedContext, 0, uncond.length);
      System.arraycopy(cond, 0, expectedContext, uncond.length, cond.length);
      double textDifference = maxDifference(expectedContext, context);
      String output = runner.unet().outputs().keySet().iterator().next();
      float[] firstPrediction = runner.unet().run(firstInputs.get(0), List.of(output)).get(output).data();
      double unetDifference = maxDifference(Npy.read(REFERENCE.resolve("first_step_noise_prediction.npy")).floats(), firstPrediction);
      float[] perStep = Npy.read(REFERENCE.resolve("latents_per_step.npy")).floats();
      int latentSize = noise.length;
      double worstStep = 0;
      for (int step = 0; step < 20; step++) {
        float[] expected = java.util.Arrays.copyOfRange(perStep, step * latentSize, (step + 1) * latentSize);
        worstStep = Math.max(worstStep, maxDifference(expected, stepLatents.get(step)));
      }
      float[] finalLatents = Npy.read(REFERENCE.resolve("final_latents.npy")).floats();
      double latentDifference = maxDifference(finalLatents, result.finalLatents().data());
      BufferedImage png = ImageIO.read(REFERENCE.resolve("image.png").toFile());
      int worstPixel = 0;
      int differingChannels = 0;
      var image = result.images().get(0);
      for (int y = 0; y < 64; y++) {
        for (int x = 0; x < 64; x++) {
          int rgb = png.getRGB(x, y);
          int[] expected = {(rgb >> 16) & 0xff, (rgb >> 8) & 0xff, rgb & 0xff};
          int[] actual = {image.red(x, y), image.green(x, y), image.blue(x, y)};
          for (int channel = 0; channel < 3; channel++) {
            int difference = Math.abs(expected[channel] - actual[channel]);
            worstPixel = Math.max(worstPixel, difference);
            differingChannels += difference > 0 ? 1 : 0;
          }
        }
      }
      report.append(String.format(Locale.ROOT,
          "text encoder max|diff| %.2e, first UNet output %.2e, latents over 20 steps %.2e, final latents %.2e, image max %d/255 (%d of %d channel values differ)%n",
          textDifference, unetDifference, worstStep, latentDifference, worstPixel, differingChannels, 64 * 64 * 3));
      System.out.print(report);
      assertTrue(textDifference < 1e-4, report.toString());
      assertTrue(unetDifference < 1e-3, report.toString());
      assertTrue(latentDifference < 2e-3, report.toString());
      assertTrue(worstPixel <= 2, report.toString());
    }
  }
}
