package dev.kiln.optimizer.profiles;

import dev.kiln.common.KilnException;
import java.util.Locale;

/** The execution provider an optimized model is meant for. */
public enum Target {
  CPU,
  CUDA,
  TENSORRT;

  public String id() {
    return name().toLowerCase(Locale.ROOT);
  }

  public static Target parse(String text) {
    for (Target target : values()) {
      if (target.id().equals(text.toLowerCase(Locale.ROOT))) {
        return target;
      }
    }
    throw new KilnException.BadInput("unknown target '" + text + "'; expected cpu, cuda or tensorrt");
  }
}
