package dev.kiln.validator.shapes;

import dev.kiln.common.KilnException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The sizes to check, as {@code --shapes "batch=1,2;height=64,96,128;width=64,80"} gives them: every combination
 * of the listed values (image pixels for a pipeline folder, the model's own input sizes for one model). Keys are
 * {@code batch}, {@code height}, {@code width}, {@code sequence}, or a model's own dim name for anything else.
 */
public record SizeSpec(Map<String, List<Long>> values) {
  public static final SizeSpec DEFAULTS = new SizeSpec(Map.of());

  public static SizeSpec parse(String text) {
    if (text == null || text.isBlank()) {
      return DEFAULTS;
    }
    Map<String, List<Long>> values = new LinkedHashMap<>();
    for (String part : text.split(";")) {
      if (part.isBlank()) {
        continue;
      }
      int equals = part.indexOf('=');
      if (equals <= 0) {
        throw new KilnException.BadInput("--shapes: expected NAME=V1,V2,... in \"" + part.strip() + "\"");
      }
      String key = part.substring(0, equals).strip();
      List<Long> sizes = new ArrayList<>();
      for (String number : part.substring(equals + 1).split(",")) {
        try {
          long size = Long.parseLong(number.strip());
          if (size <= 0) {
            throw new NumberFormatException();
          }
          if (!sizes.contains(size)) {
            sizes.add(size);
          }
        } catch (NumberFormatException e) {
          throw new KilnException.BadInput("--shapes: " + key + " needs positive whole numbers, got \"" + number.strip() + "\"");
        }
      }
      if (values.containsKey(key)) {
        throw new KilnException.BadInput("--shapes: " + key + " is given twice");
      }
      values.put(key, List.copyOf(sizes));
    }
    return new SizeSpec(values);
  }

  public boolean has(String key) {
    return values.containsKey(key);
  }

  public List<Long> get(String key) {
    return values.get(key);
  }
}
