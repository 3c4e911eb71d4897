package dev.kiln.common;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

class PrintableTest {
  @Test
  void namesKeepPrintableTextAndEscapeControlsReversibly() {
    String plain = "/down_blocks.1/attentions.0/transformer_blocks.0/attn1/to_q/MatMul_output_0";
    assertSame(plain, Printable.name(plain), "nothing to escape: the same string, no copy");
    assertEquals("café 猫 😀", Printable.name("café 猫 😀"));
    assertEquals("a\\nb", Printable.name("a\nb"));
    assertEquals("\\x1b[31mred\\x1b[0m", Printable.name("\u001b[31mred\u001b[0m"));
    assertEquals("\\x1b]0;title\\x07", Printable.name("\u001b]0;title\u0007"));
    assertEquals("tab\\there\\r", Printable.name("tab\there\r"));
    assertEquals("del\\x7f c1\\x9b", Printable.name("del\u007f c1\u009b"));
    assertEquals("back\\\\slash", Printable.name("back\\slash"), "a real backslash differs from an escape");
    // Bidirectional overrides and zero-width characters would disguise a name; line separators would split it.
    assertEquals("evil\\u{202e}txt.onnx", Printable.name("evil\u202etxt.onnx"));
    assertEquals("a\\u{200b}b\\u{2028}c", Printable.name("a\u200bb\u2028c"));
    assertEquals("lone\\u{d800}", Printable.name("lone\ud800"));
  }

  @Test
  void quotedNamesEscapeTheirQuotes() {
    assertEquals("'/down_blocks.0/attn1/Softmax'", Printable.quoted("/down_blocks.0/attn1/Softmax"));
    assertEquals("'a\\nb\\x1b[31mred\\u{202e}\\'q\\\\'", Printable.quoted("a\nb\u001b[31mred\u202e'q\\"));
  }

  @Test
  void linesKeepBackslashesAndNeverHoldAControl() {
    assertEquals("C:\\models\\unet.onnx", Printable.line("C:\\models\\unet.onnx"));
    String line = Printable.line("node 'x\n\u001b[2J': bad\r\n");
    assertEquals("node 'x\\n\\x1b[2J': bad\\r\\n", line);
    assertTrue(line.chars().allMatch(c -> c >= 0x20 && c != 0x7f), line);
    assertTrue(Printable.isSafe("plain text, 猫"));
    assertFalse(Printable.isSafe("two\nlines"));
    assertEquals("", Printable.line(null));
  }

  @Test
  void everyKilnMessageIsOneSafeLineAtTheSource() {
    KilnException error = new KilnException.BadInput("unet/model.onnx: node 'attn\n\u001b[31m' has 3 inputs, expected 2");
    assertEquals("unet/model.onnx: node 'attn\\n\\x1b[31m' has 3 inputs, expected 2", error.getMessage());
    assertEquals(2, error.exitCode());
    assertEquals("a\\b", new KilnException.ValidationFailed("a\\b").getMessage(), "backslashes of paths are kept");
  }

  @Test
  void jacksonErrorsBecomeOneLineWithTheirPosition() {
    JsonProcessingException error = org.junit.jupiter.api.Assertions.assertThrows(JsonProcessingException.class,
        () -> new ObjectMapper().readTree("{\n  \"steps_offset\": 1,\n  \"beta_start\": }"));
    assertTrue(error.getMessage().contains("\n"), "Jackson's own message is several lines: " + error.getMessage());
    String described = Json.describe(error);
    assertFalse(described.contains("\n"), described);
    assertFalse(described.contains("[Source"), described);
    assertTrue(described.startsWith("Unexpected character ('}'"), described);
    assertTrue(described.endsWith("(line 3, column 17)"), described);
  }

  @Test
  void aRedirectedStderrDrawsNoProgress() {
    // Surefire's forked JVM writes stderr into a pipe: no terminal, so the bar stays silent.
    assertFalse(Terminal.stderrDraws());
    try (Progress progress = Progress.start("test", 3, "steps", false)) {
      assertFalse(progress.drawing());
    }
  }
}
