package dev.kiln.common;

import java.nio.file.Path;

/** Where Kiln keeps what it can make again (bundles, ONNX Runtime's optimized models): never in a repository. */
public final class KilnCache {
  private KilnCache() {}

  /** $KILN_CACHE, else the kiln.cache system property, else ~/.cache/kiln; absolute. */
  public static Path root() {
    String configured = System.getenv("KILN_CACHE");
    if (configured == null || configured.isBlank()) {
      configured = System.getProperty("kiln.cache");
    }
    if (configured != null && !configured.isBlank()) {
      return Path.of(configured).toAbsolutePath();
    }
    return Path.of(System.getProperty("user.home"), ".cache", "kiln").toAbsolutePath();
  }
}
