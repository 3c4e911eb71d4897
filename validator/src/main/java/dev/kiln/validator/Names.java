package dev.kiln.validator;

/** Names from models as they are printed: quoted, with control and non-ASCII characters escaped. */
public final class Names {
  private Names() {}

  public static String quote(String name) {
    if (name == null) {
      return "\"\"";
    }
    StringBuilder text = new StringBuilder(name.length() + 2).append('"');
    for (int i = 0; i < name.length(); i++) {
      char c = name.charAt(i);
      if (c == '"' || c == '\\') {
        text.append('\\').append(c);
      } else if (c < 0x20 || c > 0x7e) {
        text.append(String.format("\\u%04x", (int) c));
      } else {
        text.append(c);
      }
    }
    return text.append('"').toString();
  }
}
