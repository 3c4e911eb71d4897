package dev.kiln.common;

/**
 * Names that come from models, made safe to print: a model can name a node anything, including terminal escape
 * sequences, newlines that forge extra report lines, or bidirectional overrides that reorder what is shown.
 */
public final class Printable {
  private Printable() {}

  /** {@code name} in single quotes, with quotes, backslashes, control and format characters escaped. */
  public static String quoted(String name) {
    StringBuilder text = new StringBuilder(name.length() + 2).append('\'');
    name.codePoints().forEach(codePoint -> {
      switch (codePoint) {
        case '\'' -> text.append("\\'");
        case '\\' -> text.append("\\\\");
        case '\n' -> text.append("\\n");
        case '\r' -> text.append("\\r");
        case '\t' -> text.append("\\t");
        default -> {
          int type = Character.getType(codePoint);
          if (type == Character.CONTROL || type == Character.FORMAT || type == Character.UNASSIGNED
              || type == Character.SURROGATE || type == Character.LINE_SEPARATOR || type == Character.PARAGRAPH_SEPARATOR) {
            text.append(codePoint <= 0xFFFF ? String.format("\\u%04x", codePoint) : String.format("\\U%08x", codePoint));
          } else {
            text.appendCodePoint(codePoint);
          }
        }
      }
    });
    return text.append('\'').toString();
  }
}
