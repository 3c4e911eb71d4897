package dev.kiln.common;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Whether a standard stream of this process is a terminal. {@link System#console()} answers for stdin and stdout
 * together, which is the wrong question for a progress bar drawn on stderr: `kiln optimize ... > report.txt` has a
 * terminal on stderr, `kiln inspect x 2> log` has none.
 */
public final class Terminal {
  private Terminal() {}

  /** True when stderr is a terminal and TERM does not say it cannot draw ("dumb"). */
  public static boolean stderrDraws() {
    return isTerminal(2) && !"dumb".equals(System.getenv("TERM"));
  }

  /**
   * Linux: the file descriptor's link names a terminal device. Elsewhere (no /proc) the best Java 17 offers is
   * {@link System#console()}.
   */
  static boolean isTerminal(int descriptor) {
    Path link = Path.of("/proc/self/fd/" + descriptor);
    try {
      String target = Files.readSymbolicLink(link).toString();
      return target.startsWith("/dev/pts/") || target.startsWith("/dev/tty") || target.equals("/dev/console");
    } catch (IOException | UnsupportedOperationException | SecurityException e) {
      return System.console() != null;
    }
  }
}
