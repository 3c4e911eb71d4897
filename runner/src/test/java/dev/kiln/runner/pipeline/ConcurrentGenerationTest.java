package dev.kiln.runner.pipeline;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.runner.image.PngWriter;
import dev.kiln.runner.image.RgbImage;
import dev.kiln.runner.scheduler.SchedulerKind;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

/**
 * One shared pipeline serving 4 threads gives every generation the same bytes as the same request run alone:
 * 512 generations over txt2img, img2img, clip skip 0/1/2, guided and unguided, batch 1 and 2, deterministic
 * and ancestral schedulers. They run in 8 rounds, each on a freshly opened pipeline whose first 4 requests
 * (all clip skip, one img2img) start together, so the lazily created state (the text encoder's recovered
 * LayerNorm, the VAE encoder session) is created 8 times while threads race for it.
 */
class ConcurrentGenerationTest {
  static final Path TINY = Path.of(System.getProperty("kiln.root", "..")).resolve("testdata/pipelines/tiny-sd");
  static final int GENERATIONS = 512;
  static final int THREADS = 4;
  static final int ROUNDS = 8;
  static final String[] PROMPTS = {"a red circle on a white background", "a blue square on a black background",
      "a green triangle on a white background", "a yellow star on a gray background"};

  static StableDiffusionPipeline open() {
    return StableDiffusionPipeline.open(PipelineFolder.open(TINY), Device.CPU, 1, line -> {});
  }

  /** The i-th request: every path of the pipeline appears many times, in an order that mixes them. */
  static GenerationRequest request(int index, RgbImage init) {
    SchedulerKind[] kinds = {SchedulerKind.DDIM, SchedulerKind.EULER_ANCESTRAL, SchedulerKind.DPMPP_2M};
    GenerationRequest request = GenerationRequest.of(PROMPTS[index % PROMPTS.length], index % 7)
        .withScheduler(kinds[index % kinds.length])
        .withSteps(2)
        .withSize(16, 16)
        .withClipSkip(index % (GENERATIONS / ROUNDS) < THREADS ? 1 + index % 2 : index % 3)
        .withGuidance(index % 4 == 3 ? 1.0 : 7.5);
    if (index % 5 == 1 || index % (GENERATIONS / ROUNDS) == 2) {
      request = request.withInitImage(init, 0.75);
    }
    if (index % 11 == 4) {
      request = request.withBatch(2);
    }
    return request;
  }

  static byte[] bytes(GenerationResult result) {
    java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
    for (int image = 0; image < result.images().size(); image++) {
      out.writeBytes(PngWriter.encode(result.images().get(image), Map.of("parameters", result.parameters().get(image))));
    }
    for (float value : result.finalLatents().data()) {
      int bits = Float.floatToRawIntBits(value);
      out.write(bits);
      out.write(bits >>> 8);
      out.write(bits >>> 16);
      out.write(bits >>> 24);
    }
    return out.toByteArray();
  }

  @Test
  void concurrentGenerationsMatchTheirSequentialTwinsByteForByte() throws Exception {
    List<byte[]> sequential = new ArrayList<>();
    RgbImage init;
    try (StableDiffusionPipeline alone = open()) {
      init = alone.generate(GenerationRequest.of(PROMPTS[0], 0).withSteps(2).withSize(16, 16)).images().get(0);
      for (int index = 0; index < GENERATIONS; index++) {
        sequential.add(bytes(alone.generate(request(index, init))));
      }
    }
    List<Future<byte[]>> futures = new ArrayList<>();
    ExecutorService pool = Executors.newFixedThreadPool(THREADS);
    try {
      int perRound = GENERATIONS / ROUNDS;
      for (int round = 0; round < ROUNDS; round++) {
        try (StableDiffusionPipeline shared = open()) {
          CyclicBarrier start = new CyclicBarrier(THREADS);
          List<Future<byte[]>> roundFutures = new ArrayList<>();
          for (int index = round * perRound; index < (round + 1) * perRound; index++) {
            int which = index;
            boolean racing = index - round * perRound < THREADS;
            roundFutures.add(pool.submit(() -> {
              if (racing) {
                start.await();
              }
              return bytes(shared.generate(request(which, init)));
            }));
          }
          for (Future<byte[]> future : roundFutures) {
            future.get();
          }
          futures.addAll(roundFutures);
        }
      }
      int clipSkipped = 0;
      for (int index = 0; index < GENERATIONS; index++) {
        assertArrayEquals(sequential.get(index), futures.get(index).get(), "generation " + index + ": " + request(index, init));
        clipSkipped += request(index, init).clipSkip() > 0 ? 1 : 0;
      }
      assertTrue(clipSkipped > 300, "clip-skip generations: " + clipSkipped);
    } finally {
      pool.shutdownNow();
    }
    assertEquals(GENERATIONS, futures.size());
  }
}
