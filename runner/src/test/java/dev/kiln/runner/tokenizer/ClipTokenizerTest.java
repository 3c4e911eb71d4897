package dev.kiln.runner.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.common.KilnException;
import dev.kiln.testdata.ClipVocabulary;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * ID-exact tests against the real CLIP vocabulary: vocab.json / merges.txt derived from OpenAI's committed
 * bpe_simple_vocab_16e6.txt.gz ({@link ClipVocabulary}).
 */
class ClipTokenizerTest {
  private static final ObjectMapper MAPPER = new ObjectMapper();
  private static Path clipFolder;
  private static ClipTokenizer tokenizer;

  @BeforeAll
  static void load() {
    clipFolder = ClipVocabulary.tokenizerFolder();
    tokenizer = ClipTokenizer.load(clipFolder);
  }

  private static int[] ids(JsonNode array) {
    int[] result = new int[array.size()];
    for (int index = 0; index < result.length; index++) {
      result[index] = array.get(index).asInt();
    }
    return result;
  }

  @Test
  void sharedExamplesAreIdExact() throws IOException {
    List<String> lines = Files.readAllLines(ClipVocabulary.examples(), StandardCharsets.UTF_8);
    assertEquals(4, lines.size());
    for (String line : lines) {
      JsonNode example = MAPPER.readTree(line);
      TokenizedPrompt prompt = tokenizer.encode(example.get("prompt").asText());
      assertArrayEquals(ids(example.get("ids")), prompt.ids(), example.get("prompt").asText());
      assertFalse(prompt.truncated());
    }
  }

  /** Cases whose ids come from an independent Python BPE over OpenAI's original bpe_simple_vocab_16e6.txt.gz. */
  @Test
  void independentReferenceCasesAreIdExact() throws IOException {
    int checked = 0;
    try (InputStream in = getClass().getResourceAsStream("/reference/tokenizer_cases.jsonl")) {
      for (String line : new String(in.readAllBytes(), StandardCharsets.UTF_8).split("\n")) {
        if (line.isBlank()) {
          continue;
        }
        JsonNode example = MAPPER.readTree(line);
        String text = example.get("prompt").asText();
        TokenizedPrompt prompt = tokenizer.encode(text);
        assertArrayEquals(ids(example.get("ids")), prompt.ids(), text);
        int contentCount = example.get("content_count").asInt();
        assertEquals(contentCount, prompt.contentCount(), text);
        assertEquals(contentCount > 75, prompt.truncated(), text);
        checked++;
      }
    }
    assertEquals(18, checked);
  }

  @Test
  void paddingAndTruncationFollowTheModelLength() {
    TokenizedPrompt shortPrompt = tokenizer.encode("a red circle");
    assertEquals(77, shortPrompt.padded().length);
    assertEquals(5, shortPrompt.count());
    // SD 1.x's tokenizer_config (none here) pads with the end token.
    assertEquals(49407, shortPrompt.padded()[5]);
    assertEquals(49407, shortPrompt.padded()[76]);
    TokenizedPrompt longPrompt = tokenizer.encode("cat ".repeat(100));
    assertTrue(longPrompt.truncated());
    assertEquals(77, longPrompt.count());
    assertEquals(100, longPrompt.contentCount());
    assertEquals(49406, longPrompt.ids()[0]);
    assertEquals(2368, longPrompt.ids()[75]);
    assertEquals(49407, longPrompt.ids()[76]);
  }

  @Test
  void padTokenAndLengthComeFromTheConfig(@TempDir Path folder) throws IOException {
    Files.copy(clipFolder.resolve("vocab.json"), folder.resolve("vocab.json"));
    Files.copy(clipFolder.resolve("merges.txt"), folder.resolve("merges.txt"));
    Files.writeString(folder.resolve("tokenizer_config.json"),
        "{\"model_max_length\": 16, \"pad_token\": \"!\", \"bos_token\": {\"content\": \"<|startoftext|>\"}}");
    ClipTokenizer sd2Style = ClipTokenizer.load(folder);
    TokenizedPrompt prompt = sd2Style.encode("a photo of a cat");
    assertEquals(16, prompt.padded().length);
    assertEquals(0, prompt.padded()[7]);
    assertEquals(49407, prompt.padded()[6]);
    assertEquals(0, sd2Style.padId());
    TokenizedPrompt cut = sd2Style.encode("one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen");
    assertEquals(16, cut.count());
    assertTrue(cut.truncated());
  }

  @Test
  void cacheDoesNotChangeResults() {
    String text = "a photo of a cat, a photo of a cat, a photo of a cat";
    List<Integer> first = new ArrayList<>(tokenizer.contentIds(text));
    assertEquals(first, tokenizer.contentIds(text));
    assertEquals(List.of(320, 1125, 539, 320, 2368), first.subList(0, 5));
  }

  @Test
  void missingFilesAreBadInputNamingTheFile(@TempDir Path folder) throws IOException {
    KilnException.BadInput missing = assertThrows(KilnException.BadInput.class, () -> ClipTokenizer.load(folder));
    assertTrue(missing.getMessage().contains("vocab.json"), missing.getMessage());
    Files.writeString(folder.resolve("vocab.json"), "[1, 2]");
    Files.writeString(folder.resolve("merges.txt"), "#version: 0.2\na b\n");
    KilnException.BadInput malformed = assertThrows(KilnException.BadInput.class, () -> ClipTokenizer.load(folder));
    assertTrue(malformed.getMessage().contains("not a JSON object"), malformed.getMessage());
  }
}
