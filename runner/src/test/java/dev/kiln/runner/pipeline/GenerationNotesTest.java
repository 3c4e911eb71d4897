package dev.kiln.runner.pipeline;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.runner.InvalidRequest;
import dev.kiln.runner.scheduler.SchedulerKind;
import dev.kiln.testdata.ImageJudge;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** What a generation tells its caller besides images, the defaults it picks, and the sizes it refuses, on the tiny pipeline. */
class GenerationNotesTest {
  static StableDiffusionPipeline runner;

  @BeforeAll
  static void open() {
    Path folder = Path.of(System.getProperty("kiln.root", "..")).resolve("testdata/pipelines/tiny-sd");
    runner = StableDiffusionPipeline.open(PipelineFolder.open(folder), Device.CPU, 0, line -> {});
  }

  @AfterAll
  static void close() {
    runner.close();
  }

  @Test
  void aTruncatedPromptSaysWhatWasDropped() {
    String kept = "a red circle on a white background";
    String tail = "in the style of a very old faded photograph with scratches and dust on its surface";
    StringBuilder prompt = new StringBuilder(kept);
    while (prompt.length() < 400) {
      prompt.append(", ").append(tail);
    }
    GenerationResult result = runner.generate(GenerationRequest.of(prompt.toString(), 0).withSteps(2));
    assertEquals(1, result.notes().size(), result.notes().toString());
    Matcher note = Pattern.compile("the prompt is (\\d+) tokens; the text encoder reads the first 75, so \"(.*)\" was dropped")
        .matcher(result.notes().get(0));
    assertTrue(note.matches(), result.notes().get(0));
    assertTrue(Integer.parseInt(note.group(1)) > 75, note.group(1));
    String dropped = note.group(2);
    assertTrue(dropped.length() > 20, dropped);
    // The dropped text is the end of the prompt as the tokenizer saw it (lower case; CLIP's decoder spaces word
    // ends), shown up to 200 characters.
    String normalized = prompt.toString().toLowerCase(Locale.ROOT).replace(" ", "");
    assertTrue(dropped.endsWith("..."), dropped);
    String shown = dropped.substring(0, dropped.length() - 3).replace(" ", "");
    int start = normalized.lastIndexOf(shown);
    assertTrue(start > kept.length(), dropped + " | " + normalized);
    assertTrue(normalized.length() - start > shown.length(), "more was dropped than shown");
  }

  @Test
  void aNegativePromptWithoutGuidanceIsNotedAndAPlainRequestHasNoNotes() {
    GenerationResult unguided = runner.generate(GenerationRequest.of("a red circle on a white background", 0).withSteps(2)
        .withGuidance(1.0).withNegativePrompt("blue"));
    assertEquals(List.of("the negative prompt is ignored: guidance 1 <= 1 runs no unconditional branch"), unguided.notes());
    GenerationResult plain = runner.generate(GenerationRequest.of("a red circle on a white background", 0).withSteps(2).withNegativePrompt("blue"));
    assertEquals(List.of(), plain.notes());
  }

  /** An LCM run without a guidance picks what LCM needs: 1 (no unconditional branch) for a UNet without a guidance embedding. */
  @Test
  void lcmDefaultsToTheGuidanceItNeeds() {
    int right = 0;
    for (TinyPipelineTest.Case scene : TinyPipelineTest.CASES) {
      GenerationResult result = runner.generate(GenerationRequest.of(scene.prompt(), 0).withScheduler(SchedulerKind.LCM));
      assertEquals(1.0, result.guidance());
      assertEquals(4, result.steps());
      ImageJudge.Verdict verdict = TinyPipelineTest.judge(result.images().get(0));
      right += verdict.shows(scene.colour(), scene.shape()) && verdict.background() == scene.background() ? 1 : 0;
    }
    assertEquals(TinyPipelineTest.CASES.size(), right);
    assertEquals(GenerationRequest.DEFAULT_GUIDANCE, runner.generate(GenerationRequest.of("a red circle", 0).withSteps(2)).guidance());
  }

  @Test
  void limitsGiveTheLargestBatchThatFitsAndRefuseBeyondIt() {
    long gigabyte = 1L << 30;
    GenerationLimits limits = new GenerationLimits(runner.folder(), 64, 4 * gigabyte, 24 * gigabyte);
    InvalidRequest batch = assertThrows(InvalidRequest.class, () -> limits.check(64, 64, 100_000, true, false, -1, true));
    assertEquals("batch", batch.field());
    Matcher range = Pattern.compile("must be from 1 to (\\d+) for 64x64 on this machine, got 100000 \\(needs at least .* of Java heap, the JVM has 4.0 GB")
        .matcher(batch.problem());
    assertTrue(range.find(), batch.problem());
    int largest = Integer.parseInt(range.group(1));
    assertTrue(largest > 1000 && largest < 100_000, "largest batch " + largest);
    assertDoesNotThrow(() -> limits.check(64, 64, largest, true, false, -1, true));
    assertThrows(InvalidRequest.class, () -> limits.check(64, 64, largest + 1, true, false, -1, true));
    InvalidRequest height = assertThrows(InvalidRequest.class, () -> limits.check(64, 2147483616, 1, true, false, -1, true));
    assertEquals("height", height.field());
    assertTrue(height.problem().startsWith("must be a multiple of 16 from 16 to "), height.problem());
    // The machine's memory bounds only CPU runs; a GPU run is bounded by the Java side alone.
    GenerationLimits small = new GenerationLimits(runner.folder(), 64, 4 * gigabyte, gigabyte);
    assertThrows(InvalidRequest.class, () -> small.check(2048, 2048, 1, true, false, -1, true));
    assertDoesNotThrow(() -> small.check(2048, 2048, 1, true, false, -1, false));
  }
}
