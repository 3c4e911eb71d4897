package dev.kiln.cli;

import dev.kiln.common.KilnException;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/** Parsing of {@code kiln optimize}'s specialization options: sizes in bytes and {@code name=size} dim bindings. */
final class SpecializationOptions {
  private SpecializationOptions() {}

  /** "1048576", "1MiB", "64KB", "2g": bytes (K/M/G are powers of 1024 whichever spelling). */
  static long bytes(String option, String text) {
    String trimmed = text.trim().toLowerCase(Locale.ROOT);
    long unit = 1;
    String number = trimmed;
    for (String[] suffix : new String[][] {{"kib", "1024"}, {"mib", "1048576"}, {"gib", "1073741824"}, {"kb", "1024"},
        {"mb", "1048576"}, {"gb", "1073741824"}, {"k", "1024"}, {"m", "1048576"}, {"g", "1073741824"}, {"b", "1"}}) {
      if (trimmed.endsWith(suffix[0])) {
        unit = Long.parseLong(suffix[1]);
        number = trimmed.substring(0, trimmed.length() - suffix[0].length()).trim();
        break;
      }
    }
    try {
      long value = Long.parseLong(number);
      if (value < 0) {
        throw new NumberFormatException();
      }
      return Math.multiplyExact(value, unit);
    } catch (NumberFormatException | ArithmeticException e) {
      throw new KilnException.BadInput(option + " " + text + ": expected a size in bytes such as 1048576, 64KiB or 1MiB");
    }
  }

  /** "batch=1,height=64": each symbolic dim name with its size (≥ 1); null or empty binds nothing. */
  static Map<String, Long> dims(String option, String text) {
    Map<String, Long> dims = new LinkedHashMap<>();
    if (text == null || text.isBlank()) {
      return dims;
    }
    for (String binding : text.split(",")) {
      int equals = binding.indexOf('=');
      String name = equals < 0 ? "" : binding.substring(0, equals).trim();
      long size;
      try {
        size = Long.parseLong(binding.substring(equals + 1).trim());
      } catch (NumberFormatException e) {
        size = -1;
      }
      if (name.isEmpty() || size < 1) {
        throw new KilnException.BadInput(option + " " + text + ": expected name=size pairs separated by commas, "
            + "e.g. batch=1,height=64 (sizes are positive integers)");
      }
      if (dims.put(name, size) != null) {
        throw new KilnException.BadInput(option + " " + text + ": " + name + " is bound twice");
      }
    }
    return dims;
  }
}
