package dev.kiln.common;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.IOException;

/** The one JSON mapper: stable key order (insertion order of LinkedHashMaps), pretty printed. */
public final class Json {
  private static final ObjectMapper MAPPER =
      new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).enable(SerializationFeature.ORDER_MAP_ENTRIES_BY_KEYS);

  private Json() {}

  public static ObjectMapper mapper() {
    return MAPPER;
  }

  /**
   * One line for a failed read: Jackson's own message without the source excerpt and the "at [Source: ...]" lines it
   * appends, followed by where it happened ("line 3, column 14"). Other I/O errors keep their message.
   */
  public static String describe(IOException error) {
    if (error instanceof JsonProcessingException json) {
      String original = json.getOriginalMessage() == null ? "malformed JSON" : json.getOriginalMessage();
      int newline = original.indexOf('\n');
      String first = (newline < 0 ? original : original.substring(0, newline)).strip();
      JsonLocation location = json.getLocation();
      return location == null || location.getLineNr() < 0 ? first
          : first + " (line " + location.getLineNr() + ", column " + location.getColumnNr() + ")";
    }
    return String.valueOf(error.getMessage());
  }

  public static String write(Object value) {
    try {
      return MAPPER.writeValueAsString(value);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("cannot serialize " + value.getClass().getSimpleName(), e);
    }
  }
}
