package dev.kiln.testdata;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The derived tokenizer files are byte for byte the vocab.json / merges.txt that transformers ships for
 * openai/clip-vit-large-patch14 (sha256 pinned from those files, compared once by hand with cmp).
 */
class ClipVocabularyTest {
  @Test
  void derivedFilesMatchTransformersByteForByte() throws IOException {
    Path folder = ClipVocabulary.tokenizerFolder();
    assertEquals("5047b556ce86ccaf6aa22b3ffccfc52d391ea4accdab9c2f2407da5b742d4363", sha256(folder.resolve("vocab.json")));
    assertEquals("9fd691f7c8039210e0fced15865466c65820d09b63988b0174bfe25de299051a", sha256(folder.resolve("merges.txt")));
    List<String> merges = Files.readAllLines(folder.resolve("merges.txt"), StandardCharsets.UTF_8);
    assertEquals(ClipVocabulary.MERGES + 1, merges.size());
    assertEquals("i n", merges.get(1));
    assertEquals(49408, ClipVocabulary.VOCABULARY_SIZE);
  }

  @Test
  void byteSymbolsFollowBytesToUnicode() {
    List<String> symbols = ClipVocabulary.byteSymbols();
    assertEquals(256, symbols.size());
    assertEquals(256, symbols.stream().distinct().count());
    assertEquals("!", symbols.get(0));
    assertEquals("ÿ", symbols.get(187));
    // byte 0 is the first non-printable byte: U+0100; byte 0xAD (soft hyphen) is the last: U+0143.
    assertEquals("\u0100", symbols.get(188));
    assertEquals("\u0143", symbols.get(255));
  }

  private static String sha256(Path file) throws IOException {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(file)));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
