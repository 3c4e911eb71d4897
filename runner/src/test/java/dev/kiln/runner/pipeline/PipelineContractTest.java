package dev.kiln.runner.pipeline;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnxruntime.OnnxJavaType;
import dev.kiln.common.KilnException;
import dev.kiln.runner.image.PngText;
import dev.kiln.runner.image.PngWriter;
import dev.kiln.runner.scheduler.SchedulerKind;
import dev.kiln.runner.tokenizer.ClipTokenizer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The runner against the contract pipelines (runner/src/test/python/make_contract_pipelines.py): small
 * analytic ONNX exports that differ the way real exports do (timestep dtype and rank, static batch, VAE
 * factor, pad token, SDXL's extra inputs). Asserts what the UNet is fed, not just that something runs.
 */
class PipelineContractTest {
  static Path pipeline(String name) {
    return Path.of(System.getProperty("kiln.root", "..")).resolve("runner/src/test/resources/pipelines").resolve(name);
  }

  /** Records every UNet call's inputs. */
  static final class Recorder implements StepListener {
    final List<Map<String, ModelInput>> calls = new ArrayList<>();
    final List<Integer> steps = new ArrayList<>();

    @Override
    public void unetInputs(int step, Map<String, ModelInput> inputs) {
      calls.add(inputs);
      steps.add(step);
    }
  }

  static float[] floats(ModelInput input) {
    return (float[]) input.data();
  }

  static StableDiffusionPipeline open(String name) {
    return StableDiffusionPipeline.open(PipelineFolder.open(pipeline(name)), Device.CPU, 1, line -> {});
  }

  @Test
  void sd15StyleFeedsInt64BatchTimestepsAndBatchesBothGuidanceBranches() {
    try (StableDiffusionPipeline runner = open("contract-sd")) {
      assertEquals(OnnxJavaType.INT64, runner.unet().inputType("timestep"));
      Recorder recorder = new Recorder();
      GenerationResult result = runner.generate(GenerationRequest.of("a red circle", 1).withSteps(10).withNegativePrompt("blue"), recorder);
      // VAE factor 4 (three VAE blocks) from vae_decoder/config.json; default size = UNet sample_size 8 x 4.
      assertEquals(32, result.width());
      assertEquals(32, result.images().get(0).width());
      assertEquals(10, recorder.calls.size());
      double[] timesteps = SchedulerKind.DDIM.create(runner.folder().schedulerConfig(), 10).timesteps();
      for (int call = 0; call < 10; call++) {
        Map<String, ModelInput> inputs = recorder.calls.get(call);
        assertArrayEquals(new long[] {2, 4, 8, 8}, inputs.get("sample").shape());
        assertArrayEquals(new long[] {2}, inputs.get("timestep").shape());
        assertEquals(timesteps[call], inputs.get("timestep").valueAt(0));
        assertEquals(timesteps[call], inputs.get("timestep").valueAt(1));
        assertArrayEquals(new long[] {2, 77, 8}, inputs.get("encoder_hidden_states").shape());
        float[] sample = floats(inputs.get("sample"));
        assertArrayEquals(Arrays.copyOfRange(sample, 0, 256), Arrays.copyOfRange(sample, 256, 512), "both branches see the same latents");
      }
      float[] context = floats(recorder.calls.get(0).get("encoder_hidden_states"));
      // Row 0 is the negative prompt, row 1 the prompt (diffusers' order), and they differ.
      assertFalse(Arrays.equals(Arrays.copyOfRange(context, 0, 616), Arrays.copyOfRange(context, 616, 1232)));
      Recorder unguided = new Recorder();
      runner.generate(GenerationRequest.of("blue", 1).withSteps(10).withGuidance(0), unguided);
      float[] negativeAlone = floats(unguided.calls.get(0).get("encoder_hidden_states"));
      assertArrayEquals(negativeAlone, Arrays.copyOfRange(context, 0, 616), 0f);
      assertArrayEquals(new long[] {1, 4, 8, 8}, unguided.calls.get(0).get("sample").shape());
    }
  }

  @Test
  void sameSeedGivesByteIdenticalPngAndOtherSeedsDiffer() {
    try (StableDiffusionPipeline runner = open("contract-sd")) {
      GenerationRequest request = GenerationRequest.of("a red circle", 42).withSteps(8);
      GenerationResult first = runner.generate(request);
      GenerationResult second = runner.generate(request);
      byte[] png = PngWriter.encode(first.images().get(0), Map.of("parameters", first.parameters().get(0)));
      assertArrayEquals(png, PngWriter.encode(second.images().get(0), Map.of("parameters", second.parameters().get(0))));
      GenerationResult other = runner.generate(request.withSeed(43));
      assertFalse(Arrays.equals(first.images().get(0).pixels(), other.images().get(0).pixels()));
      String parameters = PngText.read(png).get("parameters");
      assertTrue(parameters.startsWith("a red circle\nSteps: 8, Sampler: DDIM, CFG scale: 7.5, Seed: 42, Size: 32x32, Model: contract-sd"),
          parameters);
    }
  }

  @Test
  void batchDrawsOneNoiseTensorAndGivesDistinctImages() {
    try (StableDiffusionPipeline runner = open("contract-sd")) {
      Recorder recorder = new Recorder();
      GenerationResult result = runner.generate(GenerationRequest.of("a red circle", 5).withSteps(4).withBatch(3), recorder);
      assertEquals(3, result.images().size());
      assertArrayEquals(new long[] {6, 4, 8, 8}, recorder.calls.get(0).get("sample").shape());
      float[] expectedNoise = new dev.kiln.runner.noise.TorchGenerator(5).randn(3 * 256);
      assertArrayEquals(expectedNoise, Arrays.copyOfRange(floats(recorder.calls.get(0).get("sample")), 768, 1536), 0f);
      assertFalse(Arrays.equals(result.images().get(0).pixels(), result.images().get(1).pixels()));
      assertTrue(result.parameters().get(2).contains("Batch size: 3, Batch pos: 2"));
    }
  }

  @Test
  void img2imgRunsTheTailOfTheScheduleFromTheEncodedImage() {
    try (StableDiffusionPipeline runner = open("contract-sd")) {
      GenerationResult source = runner.generate(GenerationRequest.of("a red circle", 3).withSteps(6));
      Recorder recorder = new Recorder();
      GenerationResult result = runner.generate(GenerationRequest.of("a red circle", 3).withSteps(20)
          .withInitImage(source.images().get(0), 0.5), recorder);
      assertEquals(10, recorder.calls.size());
      double[] timesteps = SchedulerKind.DDIM.create(runner.folder().schedulerConfig(), 20).timesteps();
      assertEquals(timesteps[10], recorder.calls.get(0).get("timestep").valueAt(0));
      assertEquals(10, result.timings().stages().get("unet_step").size());
      assertEquals(1, result.timings().stages().get("vae_encoder").size());
      assertThrows(KilnException.BadInput.class, () -> runner.generate(GenerationRequest.of("x", 3).withSteps(4)
          .withInitImage(source.images().get(0), 0.1)));
    }
  }

  @Test
  void clipSkipUsesAnEarlierLayerThroughTheRecoveredFinalLayerNorm() {
    try (StableDiffusionPipeline runner = open("contract-sd")) {
      TextEncoder encoder = new TextEncoder(OnnxModel.open("text_encoder", runner.folder().model("text_encoder"),
          ai.onnxruntime.OrtEnvironment.getEnvironment(), new ai.onnxruntime.OrtSession.SessionOptions()),
          ClipTokenizer.load(runner.folder().root().resolve("tokenizer")));
      try (encoder) {
        StageTimings timings = new StageTimings();
        Tensor skipped = encoder.encode("a red circle", 1, false, timings).hidden();
        Map<String, Tensor> outputs = encoder.allOutputs("a blue square");
        // The recovered LayerNorm reproduces the model's own final LayerNorm on another prompt.
        float[] rebuilt = encoder.applyFinalLayerNorm(outputs.get("hidden_states.2")).data();
        float[] actual = outputs.get("last_hidden_state").data();
        double worst = 0;
        for (int index = 0; index < actual.length; index++) {
          worst = Math.max(worst, Math.abs(rebuilt[index] - actual[index]));
        }
        assertTrue(worst < 1e-4, "recovered final LayerNorm is off by " + worst);
        Tensor normal = encoder.encode("a red circle", 0, false, timings).hidden();
        assertFalse(Arrays.equals(normal.data(), skipped.data()));
        assertThrows(KilnException.BadInput.class, () -> encoder.encode("a red circle", 3, false, timings));
      }
    }
  }

  @Test
  void sd2StyleFeedsAFloatScalarTimestepAndPadsWithExclamationMarks() {
    assertEquals(0, ClipTokenizer.load(pipeline("contract-sd2").resolve("tokenizer")).encode("a red circle").padded()[76]);
    try (StableDiffusionPipeline runner = open("contract-sd2")) {
      assertEquals(OnnxJavaType.FLOAT, runner.unet().inputType("timestep"));
      assertEquals(0, runner.unet().inputShape("timestep").length);
      assertTrue(runner.folder().schedulerConfig().vPrediction());
      assertEquals(SchedulerKind.EULER, runner.folder().defaultScheduler());
      Recorder recorder = new Recorder();
      GenerationResult result = runner.generate(GenerationRequest.of("a red circle", 2).withSteps(5), recorder);
      assertEquals(32, result.width());
      double[] timesteps = SchedulerKind.EULER.create(runner.folder().schedulerConfig(), 5).timesteps();
      assertEquals(0, recorder.calls.get(2).get("timestep").shape().length);
      assertEquals(timesteps[2], recorder.calls.get(2).get("timestep").valueAt(0));
      for (float value : result.finalLatents().data()) {
        assertTrue(Float.isFinite(value));
      }
      // The export has a static batch of 2: without guidance one row cannot be fed, and the message says why.
      KilnException.BadInput error = assertThrows(KilnException.BadInput.class,
          () -> runner.generate(GenerationRequest.of("a red circle", 2).withSteps(2).withGuidance(0)));
      assertTrue(error.getMessage().contains("exported for batch 2"), error.getMessage());
    }
  }

  @Test
  void sdxlStyleFeedsPooledEmbedsTimeIdsAndZerosForAnEmptyNegative() {
    try (StableDiffusionPipeline runner = open("contract-sdxl")) {
      assertTrue(runner.folder().xl());
      Recorder recorder = new Recorder();
      GenerationResult result = runner.generate(GenerationRequest.of("a red circle", 9).withSteps(4).withSize(48, 40), recorder);
      assertEquals(48, result.images().get(0).width());
      assertEquals(40, result.images().get(0).height());
      Map<String, ModelInput> inputs = recorder.calls.get(0);
      assertArrayEquals(new long[] {2, 4, 5, 6}, inputs.get("sample").shape());
      assertArrayEquals(new long[] {1}, inputs.get("timestep").shape());
      assertArrayEquals(new long[] {2, 77, 16}, inputs.get("encoder_hidden_states").shape());
      assertArrayEquals(new long[] {2, 6}, inputs.get("text_embeds").shape());
      assertArrayEquals(new float[] {40, 48, 0, 0, 40, 48, 40, 48, 0, 0, 40, 48}, floats(inputs.get("time_ids")), 0f);
      float[] context = floats(inputs.get("encoder_hidden_states"));
      float[] pooled = floats(inputs.get("text_embeds"));
      assertArrayEquals(new float[77 * 16], Arrays.copyOfRange(context, 0, 77 * 16), 0f);
      assertArrayEquals(new float[6], Arrays.copyOfRange(pooled, 0, 6), 0f);
      assertNotEquals(0f, pooled[6]);
      Recorder negative = new Recorder();
      runner.generate(GenerationRequest.of("a red circle", 9).withSteps(2).withNegativePrompt("blurry"), negative);
      float[] negativePooled = floats(negative.calls.get(0).get("text_embeds"));
      assertNotEquals(0f, negativePooled[0]);
    }
  }

  @Test
  void everySchedulerRunsEndToEnd() {
    try (StableDiffusionPipeline runner = open("contract-sd")) {
      for (SchedulerKind kind : SchedulerKind.values()) {
        Recorder recorder = new Recorder();
        GenerationResult result = runner.generate(GenerationRequest.of("a red circle", 1).withScheduler(kind).withSteps(4), recorder);
        assertEquals(kind.evaluations(4), recorder.calls.size(), kind.toString());
        for (float value : result.finalLatents().data()) {
          assertTrue(Float.isFinite(value), kind.toString());
        }
        assertTrue(result.parameters().get(0).contains("Sampler: " + GenerationParameters.samplerName(kind) + ","));
      }
    }
  }

  @Test
  void badInputIsRejectedWithTheReason() {
    assertThrows(KilnException.BadInput.class, () -> PipelineFolder.open(Path.of("/nonexistent/pipeline")));
    try (StableDiffusionPipeline runner = open("contract-sd")) {
      KilnException.BadInput size = assertThrows(KilnException.BadInput.class,
          () -> runner.generate(GenerationRequest.of("x", 1).withSize(30, 32)));
      assertTrue(size.getMessage().contains("multiples of 4"), size.getMessage());
      assertThrows(KilnException.BadInput.class, () -> runner.generate(GenerationRequest.of("x", 1).withBatch(0)));
      assertThrows(KilnException.BadInput.class, () -> runner.generate(GenerationRequest.of("x", 1).withSteps(0)));
    }
  }

  @Test
  void cudaWithoutAGpuFallsBackToCpuWithOneWarning() {
    List<String> warnings = new ArrayList<>();
    try (StableDiffusionPipeline runner = StableDiffusionPipeline.open(PipelineFolder.open(pipeline("contract-sd")), Device.CUDA, 1, warnings::add)) {
      if (Device.gpuPresent()) {
        assertTrue(warnings.size() <= 1);
      } else {
        assertEquals(Device.CPU, runner.device());
        assertEquals(1, warnings.size());
        assertTrue(warnings.get(0).contains("no NVIDIA GPU"), warnings.get(0));
      }
    }
  }
}
