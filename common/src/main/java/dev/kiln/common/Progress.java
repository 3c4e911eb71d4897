package dev.kiln.common;

import java.io.PrintStream;
import java.util.Locale;

/**
 * A one-line progress bar on stderr for work that takes more than a moment. It draws only when stderr is a
 * terminal (and {@code --json} is not set), so piped and CI output stays clean; stdout may be redirected to a file
 * while the bar still shows.
 */
public final class Progress implements AutoCloseable {
  private static final long REDRAW_NANOS = 100_000_000L;
  private static final int DETAIL_WIDTH = 40;
  private String label;
  private long total;
  private final String unit;
  private final PrintStream out;
  private long startNanos = System.nanoTime();
  private long done;
  private long lastDrawNanos;
  private boolean drew;
  private String detail = "";

  private Progress(String label, long total, String unit, PrintStream out) {
    this.label = label;
    this.total = total;
    this.unit = unit;
    this.out = out;
  }

  /** A bar that draws on stderr when stderr is a terminal and {@code quiet} is false; otherwise it is silent. */
  public static Progress start(String label, long total, String unit, boolean quiet) {
    return new Progress(label, total, unit, !quiet && Terminal.stderrDraws() ? System.err : null);
  }

  /** Whether this bar draws at all (stderr is a terminal and it was not asked to be quiet). */
  public boolean drawing() {
    return out != null;
  }

  /** Starts a new phase on the same line: a new label and total, the count back at zero. */
  public void restart(String newLabel, long newTotal) {
    label = newLabel;
    total = newTotal;
    done = 0;
    detail = "";
    startNanos = System.nanoTime();
    lastDrawNanos = 0;
    if (out != null) {
      draw(startNanos);
    }
  }

  /** Shows what is being worked on now (escaped, shortened) without counting anything done. */
  public void describe(String what) {
    detail = what == null ? "" : shorten(Printable.line(what));
    if (out != null) {
      lastDrawNanos = System.nanoTime();
      draw(lastDrawNanos);
    }
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
    out.printf(Locale.ROOT, "\r\033[K%s [%s] %d/%d %s (%.2f %s/s)%s", Printable.line(label), bar, done, total, unit, done / seconds, unit,
        detail.isEmpty() ? "" : " " + detail);
    out.flush();
    drew = true;
  }

  private static String shorten(String text) {
    return text.length() <= DETAIL_WIDTH ? text : text.substring(0, DETAIL_WIDTH - 3) + "...";
  }

  @Override
  public void close() {
    if (out != null && drew) {
      out.print("\r\033[K");
      out.flush();
    }
  }
}
