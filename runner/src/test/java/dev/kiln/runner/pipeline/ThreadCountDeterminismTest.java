package dev.kiln.runner.pipeline;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kiln.runner.image.RgbImage;
import dev.kiln.runner.scheduler.SchedulerKind;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The tiny pipeline gives the same PNG and final-latent bytes with 1 and with 2 intra-op threads. Before the
 * runner's CPU sessions used ORT's layout pass (see {@link ThreadIndependentOptimization}), MLAS's NCHW Conv cut
 * its reduction at thread-dependent places and the final latents differed by up to 1.2e-5 between the two.
 * The requests cover the sizes where the split differs (batch 1 and 2, small and default latents) and img2img,
 * whose VAE encoder session is opened lazily with the same options.
 */
class ThreadCountDeterminismTest {
  static List<GenerationRequest> requests(RgbImage init) {
    return List.of(
        GenerationRequest.of("a red circle on a white background", 0).withScheduler(SchedulerKind.DDIM).withSteps(20),
        GenerationRequest.of("a blue square on a black background", 3).withScheduler(SchedulerKind.EULER_ANCESTRAL).withSteps(8)
            .withSize(32, 32).withBatch(2),
        GenerationRequest.of("a green triangle on a white background", 5).withScheduler(SchedulerKind.DPMPP_2M).withSteps(8)
            .withSize(96, 96).withGuidance(1.0),
        GenerationRequest.of("a yellow star on a gray background", 7).withSteps(8).withInitImage(init, 0.6));
  }

  static List<byte[]> generate(int threads, RgbImage init) {
    List<byte[]> outputs = new ArrayList<>();
    try (StableDiffusionPipeline runner = StableDiffusionPipeline.open(PipelineFolder.open(ConcurrentGenerationTest.TINY), Device.CPU, threads, line -> {})) {
      for (GenerationRequest request : requests(init)) {
        outputs.add(ConcurrentGenerationTest.bytes(runner.generate(request)));
      }
    }
    return outputs;
  }

  @Test
  void oneAndTwoThreadsGiveByteIdenticalImagesAndLatents() {
    RgbImage init;
    try (StableDiffusionPipeline runner = StableDiffusionPipeline.open(PipelineFolder.open(ConcurrentGenerationTest.TINY), Device.CPU, 1, line -> {})) {
      init = runner.generate(GenerationRequest.of("a magenta circle on a black background", 1).withSteps(4)).images().get(0);
    }
    List<byte[]> one = generate(1, init);
    List<byte[]> two = generate(2, init);
    assertEquals(4, one.size());
    for (int index = 0; index < one.size(); index++) {
      assertArrayEquals(one.get(index), two.get(index), "request " + index + " differs between 1 and 2 threads: " + requests(init).get(index));
    }
  }
}
