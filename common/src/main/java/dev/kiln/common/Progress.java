package dev.kiln.common;

import java.io.PrintStream;
import java.util.Locale;

/**
 * A one-line progress bar on stderr for work that takes more than a moment. It draws only when the
 * process has a terminal (and {@code --json} is not set), so piped and CI output stays clean.
 */
public final class Progress implements AutoCloseable {
  private static final long REDRAW_NANOS = 100_000_000L;
  private final String label;
  private final long total;
  private final String unit;
  private final PrintStream out;
  private final long startNanos = System.nanoTime();
  private long done;
  private long lastDrawNanos;
  private boolean drew;

  private Progress(String label, long total, String unit, PrintStream out) {
    this.label = label;
    this.total = total;
    this.unit = unit;
    this.out = out;
  }

  /** A bar that draws on the terminal when there is one and {@code quiet} is false; otherwise it is silent. */
  public static Progress start(String label, long total, String unit, boolean quiet) {
    boolean terminal = !quiet && System.console() != null && !"dumb".equals(System.getenv("TERM"));
    return new Progress(label, total, unit, terminal ? System.err : null);
  }

  public void step() {
    advance(1);
  }

  public void advance(long amount) {
    done += amount;
    long now = System.nanoTime();
    if (out != null && (now - lastDrawNanos > REDRAW_NANOS || done >= total)) {
      lastDrawNanos = now;
      draw(now);
    }
  }

  private void draw(long now) {
    double seconds = Math.max(1e-9, (now - startNanos) / 1e9);
    int width = 30;
    int filled = total <= 0 ? 0 : (int) Math.min(width, width * done / total);
    String bar = "#".repeat(filled) + "-".repeat(width - filled);
    out.printf(Locale.ROOT, "\r%s [%s] %d/%d %s (%.2f %s/s)", label, bar, done, total, unit, done / seconds, unit);
    out.flush();
    drew = true;
  }

  @Override
  public void close() {
    if (out != null && drew) {
      out.print("\r\033[K");
      out.flush();
    }
  }
}
