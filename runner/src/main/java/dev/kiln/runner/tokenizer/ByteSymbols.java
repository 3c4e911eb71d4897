package dev.kiln.runner.tokenizer;

/**
 * GPT-2/CLIP's reversible map from the 256 byte values to printable characters: printable Latin-1 bytes map
 * to themselves, the rest (controls, space, soft hyphen...) to U+0100 onwards in byte order. BPE then works
 * on strings with no whitespace or control characters in them.
 */
final class ByteSymbols {
  private static final String[] SYMBOLS = build();

  private ByteSymbols() {}

  private static String[] build() {
    String[] symbols = new String[256];
    int shifted = 0;
    for (int value = 0; value < 256; value++) {
      boolean kept = (value >= '!' && value <= '~') || (value >= 0xA1 && value <= 0xAC) || (value >= 0xAE && value <= 0xFF);
      symbols[value] = kept ? String.valueOf((char) value) : String.valueOf((char) (256 + shifted++));
    }
    return symbols;
  }

  static String of(byte value) {
    return SYMBOLS[value & 0xff];
  }

  /** The byte a symbol character stands for, or -1 when it is none. */
  static int valueOf(char symbol) {
    for (int value = 0; value < 256; value++) {
      if (SYMBOLS[value].charAt(0) == symbol) {
        return value;
      }
    }
    return -1;
  }
}
