package dev.kiln.common;

/**
 * Names that come from models, made safe to print: a model can name a node anything, including terminal escape
 * sequences, newlines that forge extra report lines, or bidirectional overrides that reorder what is shown.
 */
public final class Printable {
  private Printable() {}

  /** {@code name} in single quotes, with quotes, backslashes, control and format characters escaped. */
  public static String quoted(String name) {
    return "'" + escape(name, true) + "'";
  }

  /**
   * A message that may carry names from a model (a rule's reason for declining a site), with control and format
   * characters escaped so it stays one honest line; quotes and backslashes are left as written.
   */
  public static String line(String message) {
    return escape(message, false);
  }

  private static String escape(String name, boolean quotes) {
    StringBuilder text = new StringBuilder(name.length() + 2);
    name.codePoints().forEach(codePoint -> {
      switch (codePoint) {
        case '\'' -> text.append(quotes ? "\\'" : "'");
        case '\\' -> text.append(quotes ? "\\\\" : "\\");
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
    return text.toString();
  }
}
