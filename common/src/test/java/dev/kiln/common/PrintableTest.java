package dev.kiln.common;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class PrintableTest {
  @Test
  void ordinaryNamesOnlyGainQuotes() {
    assertEquals("'/down_blocks.0/attn1/Softmax'", Printable.quoted("/down_blocks.0/attn1/Softmax"));
    assertEquals("'注意力/Softmax'", Printable.quoted("注意力/Softmax"));
  }

  @Test
  void escapesControlFormatAndQuoteCharacters() {
    assertEquals("'a\\nb\\u001b[31mred\\u202e\\'q\\\\'", Printable.quoted("a\nb\u001b[31mred\u202e'q\\"));
  }

  @Test
  void aLineKeepsItsQuotesButNotItsControlCharacters() {
    assertEquals("slice bounds of 'x\\n/Slice' unknown", Printable.line("slice bounds of 'x\n/Slice' unknown"));
    assertEquals("input 0 of Re\\u001b[2Jlu: expected Tanh", Printable.line("input 0 of Re\u001b[2Jlu: expected Tanh"));
  }
}
