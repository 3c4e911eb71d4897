package dev.kiln.runner.config;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.common.Json;
import dev.kiln.common.KilnException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/**
 * A diffusers/transformers JSON config read strictly: a value of the wrong JSON type (a string where a number
 * belongs), a fraction where an integer belongs, or a number outside the range the math can use is bad input
 * naming the file, the field, the valid range and the value, never replaced by a default. Absent and null
 * fields take the default, as diffusers does.
 */
public final class JsonConfig {
  private static final ObjectMapper MAPPER = new ObjectMapper();
  private final JsonNode json;
  private final String source;

  private JsonConfig(JsonNode json, String source) {
    this.json = json;
    this.source = source;
  }

  /** Wraps an already parsed object; {@code source} names it in messages. */
  public static JsonConfig of(JsonNode json, String source) {
    if (json == null || !json.isObject()) {
      throw new KilnException.BadInput("config " + source + " is not a JSON object");
    }
    return new JsonConfig(json, source);
  }

  /** Reads {@code file}; a missing file is an empty config when {@code optional}, bad input otherwise. */
  public static JsonConfig read(Path file, boolean optional) {
    if (!Files.isRegularFile(file)) {
      if (optional) {
        return new JsonConfig(MAPPER.createObjectNode(), file.toString());
      }
      throw new KilnException.BadInput("missing config " + file);
    }
    try {
      return of(MAPPER.readTree(file.toFile()), file.toString());
    } catch (JsonProcessingException e) {
      throw new KilnException.BadInput("config " + file + " is not valid JSON: " + Json.describe(e), e);
    } catch (IOException e) {
      throw new KilnException.BadInput("cannot read config " + file + ": " + e.getMessage(), e);
    }
  }

  public JsonNode node() {
    return json;
  }

  public String source() {
    return source;
  }

  private boolean absent(String field) {
    return !json.hasNonNull(field);
  }

  public KilnException.BadInput bad(String field, String expected, JsonNode value) {
    return new KilnException.BadInput("config " + source + ": " + field + " must be " + expected + ", got " + shown(value));
  }

  private static String shown(JsonNode value) {
    String text = value.toString();
    return text.length() > 60 ? text.substring(0, 57) + "..." : text;
  }

  /** A finite number in [min, max]. */
  public double number(String field, double fallback, double min, double max) {
    if (absent(field)) {
      return fallback;
    }
    JsonNode value = json.get(field);
    String expected = "a number from " + plain(min) + " to " + plain(max);
    if (!value.isNumber() || !Double.isFinite(value.asDouble()) || value.asDouble() < min || value.asDouble() > max) {
      throw bad(field, expected, value);
    }
    return value.asDouble();
  }

  /** An integer in [min, max] (an integral value written as 1000.0 counts, as Python's json writes it). */
  public int integer(String field, int fallback, int min, int max) {
    if (absent(field)) {
      return fallback;
    }
    return integer(field, json.get(field), min, max);
  }

  public int integer(String field, JsonNode value, int min, int max) {
    double number = value.asDouble();
    if (!value.isNumber() || number != Math.rint(number) || number < min || number > max) {
      throw bad(field, "an integer from " + min + " to " + max, value);
    }
    return (int) number;
  }

  public boolean bool(String field, boolean fallback) {
    if (absent(field)) {
      return fallback;
    }
    JsonNode value = json.get(field);
    if (!value.isBoolean()) {
      throw bad(field, "true or false", value);
    }
    return value.asBoolean();
  }

  public String text(String field, String fallback) {
    if (absent(field)) {
      return fallback;
    }
    JsonNode value = json.get(field);
    if (!value.isTextual()) {
      throw bad(field, "a string", value);
    }
    return value.asText();
  }

  /** A non-empty array of integers in [min, max], at most {@code maxLength} long; null when absent. */
  public int[] integers(String field, int maxLength, int min, int max) {
    if (absent(field)) {
      return null;
    }
    JsonNode value = json.get(field);
    if (!value.isArray() || value.isEmpty() || value.size() > maxLength) {
      throw bad(field, "a list of 1 to " + maxLength + " integers", value);
    }
    int[] result = new int[value.size()];
    for (int index = 0; index < result.length; index++) {
      result[index] = integer(field + "[" + index + "]", value.get(index), min, max);
    }
    return result;
  }

  /** An integer or a list of integers (diffusers' per-block settings); the first entry, or null when absent. */
  public Integer firstOfIntegers(String field, int min, int max) {
    if (absent(field)) {
      return null;
    }
    JsonNode value = json.get(field);
    if (value.isArray()) {
      return integers(field, 64, min, max)[0];
    }
    return integer(field, value, min, max);
  }

  /** A list of strings; null when absent. */
  public String[] texts(String field, int maxLength) {
    if (absent(field)) {
      return null;
    }
    JsonNode value = json.get(field);
    if (!value.isArray() || value.size() > maxLength) {
      throw bad(field, "a list of at most " + maxLength + " strings", value);
    }
    String[] result = new String[value.size()];
    for (int index = 0; index < result.length; index++) {
      if (!value.get(index).isTextual()) {
        throw bad(field + "[" + index + "]", "a string", value.get(index));
      }
      result[index] = value.get(index).asText();
    }
    return result;
  }

  private static String plain(double value) {
    return value == Math.rint(value) && Math.abs(value) < 1e15 ? String.valueOf((long) value) : String.format(Locale.ROOT, "%s", value);
  }
}
