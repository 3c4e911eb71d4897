package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.testdata.ClipVocabulary;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** {@code kiln tokenize} prints ids, count and truncation, against the real CLIP vocabulary. */
class TokenizeCommandTest {
  static final Path CLIP = ClipVocabulary.tokenizerFolder();

  @Test
  void jsonHasIdsCountAndTruncation() throws Exception {
    GenerateCommandTest.Run run = GenerateCommandTest.run("tokenize", CLIP.toString(), "--prompt", "a photo of a cat", "--json");
    assertEquals(0, run.exitCode(), run.err());
    JsonNode json = new ObjectMapper().readTree(run.out());
    assertEquals("[49406,320,1125,539,320,2368,49407]", json.get("ids").toString());
    assertEquals(7, json.get("count").asInt());
    assertFalse(json.get("truncated").asBoolean());
    GenerateCommandTest.Run longRun = GenerateCommandTest.run("tokenize", CLIP.toString(), "--prompt", "cat ".repeat(90), "--json");
    JsonNode longJson = new ObjectMapper().readTree(longRun.out());
    assertEquals(77, longJson.get("count").asInt());
    assertTrue(longJson.get("truncated").asBoolean());
  }

  @Test
  void textModeAndPipelineFolder() {
    GenerateCommandTest.Run run = GenerateCommandTest.run("tokenize", GenerateCommandTest.PIPELINE.toString(), "--prompt", "a red circle");
    assertEquals(0, run.exitCode(), run.err());
    assertTrue(run.out().startsWith("713 320 552 609 714"), run.out());
    assertTrue(run.out().contains("5 tokens"), run.out());
    GenerateCommandTest.Run missing = GenerateCommandTest.run("tokenize", "/nonexistent", "--prompt", "x");
    assertEquals(2, missing.exitCode());
  }
}
