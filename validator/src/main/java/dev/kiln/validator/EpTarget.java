package dev.kiln.validator;

import dev.kiln.common.KilnException;
import java.util.Locale;

/** The execution provider a candidate is meant for. */
public enum EpTarget {
  CPU, CUDA, TENSORRT;

  public static EpTarget parse(String text) {
    try {
      return valueOf(text.toUpperCase(Locale.ROOT));
    } catch (IllegalArgumentException e) {
      throw new KilnException.BadInput("--target: expected cpu, cuda or tensorrt, got \"" + text + "\"");
    }
  }

  public String label() {
    return name().toLowerCase(Locale.ROOT);
  }
}
