package dev.kiln.validator.shapes;

import java.util.Map;
import java.util.StringJoiner;

/**
 * One size a model is checked at: the value of each role (batch, height, width, sequence) or dim name, in the
 * model's own units (latent pixels for a UNet), and how the user named it ({@code label}).
 */
public record Size(Map<String, Long> values, String label) {
  public long get(String key, long fallback) {
    return values.getOrDefault(key, fallback);
  }

  static String describe(Map<String, Long> values) {
    StringJoiner text = new StringJoiner(" ");
    values.forEach((key, value) -> text.add(key + "=" + value));
    return text.toString();
  }

  @Override
  public String toString() {
    return label;
  }
}
