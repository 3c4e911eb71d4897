package dev.kiln.optimizer.precision;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.common.OutputTarget;
import dev.kiln.graph.Model;
import dev.kiln.graph.ModelReader;
import dev.kiln.testdata.Fixtures;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Calibration recorded from the runner on the tiny trained pipeline with the default options: which sets each
 * component gets (counts, shapes, the UNet's early/middle/late timesteps under guidance), byte-identical files from
 * two runs, and the written folder read back by {@link CalibrationSets} as the same sets.
 */
class PipelineCalibrationTest {
  static PipelineCalibration.Capture capture;

  @TempDir Path temporary;

  @BeforeAll
  static void record() {
    capture = PipelineCalibration.capture(Fixtures.pipeline("tiny-sd"), PipelineCalibration.Options.defaults());
  }

  @Test
  void everyComponentGetsHeldInAndHeldOutSetsAtThreeSizes() {
    assertEquals(List.of("text_encoder", "unet", "vae_decoder", "vae_encoder"), List.copyOf(capture.components().keySet()));
    // tiny-sd: 64 x 64 by default (8 x 8 latents, under the latent budget), 64 wide x 48 high, and the smallest,
    // twice its size multiple of 16: 32 x 32.
    assertEquals(List.of(new PipelineCalibration.Size(64, 64), new PipelineCalibration.Size(64, 48),
        new PipelineCalibration.Size(32, 32)), capture.sizes());
    assertEquals(4, capture.smallestSeeds());
    assertEquals("pndm", capture.scheduler());
    // 2 prompts per half x (one noise at each larger size + 4 at the smallest) x early/middle/late steps.
    PipelineCalibration.Sets unet = capture.component("unet");
    assertEquals(2 * (1 + 1 + 4) * 3, unet.heldIn().size());
    assertEquals(2 * (1 + 1 + 4) * 3, unet.heldOut().size());
    // Both halves see every size; at the smallest, prompt 1's noises are seeds 1, 5, 9 and 13.
    TreeMap<String, Integer> heldOutPerSize = new TreeMap<>();
    for (CalibrationSets.Set set : unet.heldOut()) {
      heldOutPerSize.merge(set.name().split(", ")[1], 1, Integer::sum);
    }
    assertEquals(Map.of("64x64", 6, "64x48", 6, "32x32", 24), heldOutPerSize);
    assertEquals(List.of("prompt 1, 32x32, step 0", "prompt 1, 32x32, seed 5, step 0", "prompt 1, 32x32, seed 9, step 0",
        "prompt 1, 32x32, seed 13, step 0"), unet.heldOut().stream().map(CalibrationSets.Set::name)
        .filter(name -> name.startsWith("prompt 1, 32x32") && name.endsWith("step 0")).toList());
    TreeSet<String> latentShapes = new TreeSet<>();
    TreeMap<Long, Integer> timesteps = new TreeMap<>();
    for (CalibrationSets.Set set : unet.interleaved()) {
      assertEquals(List.of("sample", "timestep", "encoder_hidden_states"), List.copyOf(set.feeds().keySet()));
      long[] sample = set.feeds().get("sample").shape();
      // Classifier-free guidance: [negative; prompt] in one batch of two.
      assertEquals(2, sample[0]);
      assertArrayEquals(new long[] {2, 77, 64}, set.feeds().get("encoder_hidden_states").shape());
      latentShapes.add(Arrays.toString(sample));
      timesteps.merge(((long[]) set.feeds().get("timestep").values())[0], 1, Integer::sum);
    }
    assertEquals(new TreeSet<>(List.of("[2, 4, 8, 8]", "[2, 4, 6, 8]", "[2, 4, 4, 4]")), latentShapes);
    // PNDM at 10 steps evaluates 11 times (timesteps 901 901 801 ... 1): the first, middle (6th) and last evaluation.
    assertEquals(Map.of(901L, 24, 501L, 24, 1L, 24), timesteps);
    // The decoder reads the loop's final latents, one image each; the encoder the decoded images (img2img path).
    assertEquals(12, capture.component("vae_decoder").heldIn().size());
    assertEquals(12, capture.component("vae_decoder").heldOut().size());
    assertArrayEquals(new long[] {1, 4, 6, 8}, capture.component("vae_decoder").heldIn().get(1).feeds().get("latent_sample").shape());
    assertArrayEquals(new long[] {1, 3, 48, 64}, capture.component("vae_encoder").heldOut().get(1).feeds().get("sample").shape());
    // Prompt and negative prompt of each prompt, each encoded once although every prompt runs at three sizes and seeds.
    assertEquals(4, capture.component("text_encoder").heldIn().size());
    assertEquals(4, capture.component("text_encoder").heldOut().size());
    // The tiny export takes int32 token ids: recorded as ORT was fed them, after the runner's conversion.
    int[] ids = (int[]) capture.component("text_encoder").heldIn().get(0).feeds().get("input_ids").values();
    assertEquals(77, ids.length);
    assertTrue(capture.describe().contains("4 prompts"), capture.describe());
    assertTrue(capture.describe().contains("seeds 0..15 (4 per prompt at the smallest size)"), capture.describe());
  }

  @Test
  void anUnchangedFolderWithTheSameOptionsIsRecordedOnce() {
    PipelineCalibration.Options options = PipelineCalibration.Options.defaults().withSteps(3).withImageToImage(false)
        .withSizes(List.of(new PipelineCalibration.Size(32, 32)));
    PipelineCalibration.Capture first = PipelineCalibration.capture(Fixtures.pipeline("tiny-sd"), options);
    assertSame(first, PipelineCalibration.capture(Fixtures.pipeline("tiny-sd"), options));
    // Other options: recorded again.
    assertNotEquals(first, PipelineCalibration.capture(Fixtures.pipeline("tiny-sd"), options.withSeed(5)));
  }

  @Test
  void theSetsDifferBetweenHalvesAndDecodedLatentsAreFinite() {
    float[] first = (float[]) capture.component("vae_decoder").heldIn().get(0).feeds().get("latent_sample").values();
    float[] other = (float[]) capture.component("vae_decoder").heldOut().get(0).feeds().get("latent_sample").values();
    assertNotEquals(Arrays.hashCode(first), Arrays.hashCode(other));
    for (float value : first) {
      assertTrue(Float.isFinite(value) && Math.abs(value) < 100, String.valueOf(value));
    }
  }

  @Test
  void writtenSetsAreByteIdenticalAcrossRunsAndReadBack() throws IOException {
    Path one = temporary.resolve("one");
    Path two = temporary.resolve("two");
    PipelineCalibration.write(capture, OutputTarget.folder(one, "calibrate"));
    // 72 UNet sets of 3 inputs, 24 decoder and 24 encoder sets, 8 text encoder sets of 1 input (input_ids).
    assertEquals(72 * 3 + 24 + 24 + 8, files(one).size());
    // A second, smaller run twice (the suite stays fast): the same bytes every time.
    PipelineCalibration.Options small = PipelineCalibration.Options.defaults().withSteps(3)
        .withSizes(List.of(new PipelineCalibration.Size(48, 32))).withPrompts(PipelineCalibration.DEFAULT_PROMPTS.subList(1, 3));
    PipelineCalibration.write(PipelineCalibration.capture(Fixtures.pipeline("tiny-sd"), small), OutputTarget.folder(two, "calibrate"));
    Path three = temporary.resolve("three");
    // Recorded afresh (capture would hand back the run above).
    PipelineCalibration.write(PipelineCalibration.record(Fixtures.pipeline("tiny-sd"), small, PipelineCalibration.Listener.NONE),
        OutputTarget.folder(three, "calibrate"));
    List<Path> files = files(two);
    assertEquals(files, files(three));
    assertEquals(6 * 3 + 2 + 2 + 4, files.size());
    for (Path file : files) {
      assertArrayEquals(Files.readAllBytes(two.resolve(file.toString())), Files.readAllBytes(three.resolve(file.toString())), file.toString());
    }
    Model unet = ModelReader.read(Fixtures.pipeline("tiny-sd").resolve("unet/model.onnx"));
    List<CalibrationSets.Set> read = CalibrationSets.read(one.resolve("unet"), unet);
    List<CalibrationSets.Set> recorded = capture.component("unet").interleaved();
    assertEquals(recorded.size(), read.size());
    for (int index = 0; index < read.size(); index++) {
      for (String input : List.of("sample", "encoder_hidden_states")) {
        assertArrayEquals((float[]) recorded.get(index).feeds().get(input).values(), (float[]) read.get(index).feeds().get(input).values());
      }
      assertArrayEquals((long[]) recorded.get(index).feeds().get("timestep").values(), (long[]) read.get(index).feeds().get("timestep").values());
    }
  }

  private static List<Path> files(Path folder) throws IOException {
    List<Path> files = new ArrayList<>();
    Path root = folder.toRealPath();
    try (Stream<Path> walk = Files.walk(root)) {
      walk.filter(Files::isRegularFile).filter(path -> !path.getFileName().toString().startsWith("."))
          .forEach(path -> files.add(root.relativize(path)));
    }
    files.sort(null);
    return files;
  }
}
