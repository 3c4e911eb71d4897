package dev.kiln.runner.pipeline;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnxruntime.OnnxJavaType;
import dev.kiln.runner.scheduler.SchedulerKind;
import dev.kiln.testdata.Fixtures;
import java.util.Arrays;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The SD 1.5, SD 2 (v-prediction) and SDXL-style fixture pipelines (random weights, real architectures as
 * exported by torch.onnx) run end to end, and their UNets are fed the shapes, element types and SDXL
 * micro-conditioning the export declares. Sizes are kept small (64x64) so the CPU tests stay quick.
 */
class FixturePipelineTest {
  static StableDiffusionPipeline open(String name) {
    return StableDiffusionPipeline.open(PipelineFolder.open(Fixtures.pipeline(name)), Device.CPU, 0, line -> {});
  }

  static void assertImage(GenerationResult result, int width, int height) {
    assertEquals(width, result.images().get(0).width());
    assertEquals(height, result.images().get(0).height());
    for (float value : result.finalLatents().data()) {
      assertTrue(Float.isFinite(value));
    }
  }

  @Test
  void sd2VPredictionRunsEndToEnd() {
    try (StableDiffusionPipeline runner = open("sd2")) {
      assertTrue(runner.folder().schedulerConfig().vPrediction());
      PipelineContractTest.Recorder recorder = new PipelineContractTest.Recorder();
      GenerationResult result = runner.generate(GenerationRequest.of("a red circle", 0).withSteps(3).withSize(64, 32), recorder);
      assertImage(result, 64, 32);
      assertEquals(3, recorder.calls.size());
      Map<String, ModelInput> inputs = recorder.calls.get(0);
      assertArrayEquals(new long[] {2, 4, 4, 8}, inputs.get("sample").shape());
      assertArrayEquals(new long[] {2, 77, 48}, inputs.get("encoder_hidden_states").shape());
      OnnxJavaType timestepType = runner.unet().inputType("timestep");
      assertEquals(OnnxJavaType.INT64, timestepType);
      long[] declared = runner.unet().inputShape("timestep");
      assertEquals(1, declared.length);
      assertEquals(declared[0] > 0 ? declared[0] : 2, inputs.get("timestep").shape()[0]);
      assertEquals(SchedulerKind.DDIM.create(runner.folder().schedulerConfig(), 3).timesteps()[0], inputs.get("timestep").valueAt(0));
      // 3 UNet blocks halve the latents twice: 48 px = 6 latents cannot; the error says what size works.
      dev.kiln.common.KilnException.BadInput odd = org.junit.jupiter.api.Assertions.assertThrows(dev.kiln.common.KilnException.BadInput.class,
          () -> runner.generate(GenerationRequest.of("a red circle", 0).withSteps(1).withSize(64, 48)));
      assertTrue(odd.getMessage().contains("multiples of 32"), odd.getMessage());
    }
  }

  @Test
  void sdxlFeedsBothEncodersPooledEmbedsAndTimeIds() {
    try (StableDiffusionPipeline runner = open("sdxl")) {
      assertTrue(runner.folder().xl());
      assertEquals(0.13025, runner.folder().vaeScalingFactor());
      PipelineContractTest.Recorder recorder = new PipelineContractTest.Recorder();
      GenerationResult result = runner.generate(GenerationRequest.of("a red circle", 0).withSteps(2).withSize(64, 64), recorder);
      assertImage(result, 64, 64);
      Map<String, ModelInput> inputs = recorder.calls.get(0);
      // 32 (CLIP-L-like penultimate) + 48 (CLIP-G-like penultimate) = the UNet's cross-attention width 80.
      assertArrayEquals(new long[] {2, 77, 80}, inputs.get("encoder_hidden_states").shape());
      assertArrayEquals(new long[] {2, 48}, inputs.get("text_embeds").shape());
      assertArrayEquals(new float[] {64, 64, 0, 0, 64, 64, 64, 64, 0, 0, 64, 64}, PipelineContractTest.floats(inputs.get("time_ids")), 0f);
      float[] pooled = PipelineContractTest.floats(inputs.get("text_embeds"));
      assertArrayEquals(new float[48], Arrays.copyOfRange(pooled, 0, 48), 0f, "empty negative prompt -> zero conditioning");
      assertFalse(Arrays.equals(new float[48], Arrays.copyOfRange(pooled, 48, 96)));
    }
  }

  @Test
  void sd15Img2ImgAndClipSkipRun() {
    try (StableDiffusionPipeline runner = open("sd15")) {
      GenerationResult source = runner.generate(GenerationRequest.of("a red circle", 4).withSteps(2).withSize(64, 64));
      assertImage(source, 64, 64);
      PipelineContractTest.Recorder recorder = new PipelineContractTest.Recorder();
      // DDIM by name: the fixture declares PNDM, which evaluates one timestep more (see SchedulerPipelineTest).
      GenerationResult edited = runner.generate(GenerationRequest.of("a blue square", 4).withSteps(4).withSize(64, 64)
          .withScheduler(SchedulerKind.DDIM).withInitImage(source.images().get(0), 0.5).withClipSkip(1), recorder);
      assertImage(edited, 64, 64);
      assertEquals(2, recorder.calls.size());
      assertTrue(edited.parameters().get(0).contains("Denoising strength: 0.5, Clip skip: 2"), edited.parameters().get(0));
    }
  }
}
