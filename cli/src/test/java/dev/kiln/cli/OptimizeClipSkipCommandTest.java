package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code kiln optimize --clip-skip 1} on the tiny pipeline: the pruned folder records the clip skip, generates without
 * --clip-skip the byte-identical PNG the unpruned (optimized) folder gives with it, and refuses another clip skip.
 */
class OptimizeClipSkipCommandTest {
  @Test
  void prunedFolderGivesTheSameImageWithoutClipSkip(@TempDir Path folder) throws Exception {
    Path unpruned = folder.resolve("a").resolve("tiny");
    Path pruned = folder.resolve("b").resolve("tiny");
    Files.createDirectories(unpruned.getParent());
    Files.createDirectories(pruned.getParent());
    var plain = GenerateCommandTest.run("optimize", OptimizeStaticCommandTest.TINY.toString(), "-o", unpruned.toString(),
        "--target", "cpu");
    assertEquals(0, plain.exitCode(), plain.err());
    var cut = GenerateCommandTest.run("optimize", OptimizeStaticCommandTest.TINY.toString(), "-o", pruned.toString(),
        "--target", "cpu", "--clip-skip", "1", "--json");
    assertEquals(0, cut.exitCode(), cut.err());
    JsonNode report = new ObjectMapper().readTree(cut.out());
    JsonNode encoder = null;
    for (JsonNode component : report.path("components")) {
      if (component.toString().contains("text_encoder")) {
        encoder = component;
      }
    }
    assertTrue(encoder != null && encoder.path("passes").path("prune-outputs").asInt() > 0, cut.out());
    System.out.println("tiny-sd text encoder --clip-skip 1: " + encoder.path("passes"));
    assertEquals(1, new ObjectMapper().readTree(pruned.resolve("model_index.json").toFile()).path("kiln_clip_skip").asInt());

    Path withSkip = folder.resolve("a.png");
    Path baked = folder.resolve("b.png");
    var first = GenerateCommandTest.run("generate", unpruned.toString(), "--prompt", "a red circle", "--steps", "4", "--seed", "2",
        "--clip-skip", "1", "-o", withSkip.toString());
    assertEquals(0, first.exitCode(), first.err());
    var second = GenerateCommandTest.run("generate", pruned.toString(), "--prompt", "a red circle", "--steps", "4", "--seed", "2",
        "-o", baked.toString());
    assertEquals(0, second.exitCode(), second.err());
    assertArrayEquals(Files.readAllBytes(withSkip), Files.readAllBytes(baked), "pruned folder without --clip-skip = unpruned with it");

    var other = GenerateCommandTest.run("generate", pruned.toString(), "--prompt", "a red circle", "--steps", "2",
        "--clip-skip", "2", "-o", folder.resolve("c.png").toString());
    assertEquals(2, other.exitCode(), other.err());
    assertTrue(other.err().contains("pruned to clip skip 1"), other.err());
  }
}
