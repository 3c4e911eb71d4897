package dev.kiln.common;

import java.util.Locale;

/**
 * Makes text from models and users safe to print: a node or tensor name, producer, domain or file name may hold
 * newlines, ANSI escape sequences or bidirectional controls, which would break Kiln's one-line errors or drive the
 * terminal. Every place that prints such text goes through here: {@link #name} for one embedded string,
 * {@link #line} for a whole message at the point it is printed.
 *
 * <p>Escapes: {@code \n \r \t}, other C0/C1 controls and DEL as {@code \xNN} (ESC is {@code \x1b}), Unicode format,
 * line/paragraph-separator and unpaired-surrogate code points as a backslash, "u{XXXX}". Printable non-ASCII (accents,
 * CJK, emoji) is kept as is.
 */
public final class Printable {
  private Printable() {}

  /**
   * One model-supplied string, escaped reversibly: a backslash becomes {@code \\} as well, so a name that really
   * contains the two characters {@code \n} prints differently from one that contains a newline.
   */
  public static String name(String text) {
    return escape(text, true);
  }

  /** One model-supplied string in single quotes, escaped as {@link #name} and with its own quotes escaped. */
  public static String quoted(String text) {
    return "'" + name(text).replace("'", "\\'") + "'";
  }

  /**
   * A whole message made into one safe terminal line. Backslashes are left alone (paths, names escaped by
   * {@link #name} earlier); everything that could end the line or reach the terminal as a control is escaped.
   */
  public static String line(String message) {
    return escape(message == null ? "" : message, false);
  }

  /** True when {@link #line} would change nothing. */
  public static boolean isSafe(String text) {
    return escape(text, false).equals(text);
  }

  private static String escape(String text, boolean backslash) {
    if (text == null) {
      return "null";
    }
    StringBuilder out = null;
    for (int index = 0; index < text.length(); ) {
      int codePoint = text.codePointAt(index);
      int width = Character.charCount(codePoint);
      String replacement = replacement(codePoint, backslash);
      if (replacement != null && out == null) {
        out = new StringBuilder(text.length() + 16).append(text, 0, index);
      }
      if (out != null) {
        if (replacement != null) {
          out.append(replacement);
        } else {
          out.appendCodePoint(codePoint);
        }
      }
      index += width;
    }
    return out == null ? text : out.toString();
  }

  private static String replacement(int codePoint, boolean backslash) {
    switch (codePoint) {
      case '\\':
        return backslash ? "\\\\" : null;
      case '\n':
        return "\\n";
      case '\r':
        return "\\r";
      case '\t':
        return "\\t";
      default:
        break;
    }
    if (codePoint < 0x20 || (codePoint >= 0x7f && codePoint <= 0x9f)) {
      return String.format(Locale.ROOT, "\\x%02x", codePoint);
    }
    int type = Character.getType(codePoint);
    if (type == Character.FORMAT || type == Character.LINE_SEPARATOR || type == Character.PARAGRAPH_SEPARATOR
        || type == Character.SURROGATE) {
      return String.format(Locale.ROOT, "\\u{%04x}", codePoint);
    }
    return null;
  }
}
