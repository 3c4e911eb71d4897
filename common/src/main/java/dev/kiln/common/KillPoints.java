package dev.kiln.common;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Named moments inside output staging where a test may freeze the process to kill it there. With the system
 * property {@code kiln.test.pauseAt=NAME} the process prints {@code kiln-paused-at NAME} on stderr when it reaches
 * that point and then waits forever, so a test running Kiln in a child JVM can kill -9 it at exactly that
 * moment and check what the output looks like. Without the property a point costs one property read.
 */
public final class KillPoints {
  public static final String PROPERTY = "kiln.test.pauseAt";
  public static final String ANNOUNCEMENT = "kiln-paused-at ";

  private KillPoints() {}

  /** What {@link #runAndKillAt} saw: whether the child reached the point, its exit code, everything it printed. */
  public record ChildRun(boolean paused, int exitCode, String output) {}

  /**
   * The test side: starts {@code command} (a JVM given {@code -Dkiln.test.pauseAt=POINT}), waits until it
   * announces {@code pauseAt}, then kills it like kill -9 ({@link Process#destroyForcibly()}). With
   * {@code pauseAt} null it simply runs the command to its end.
   */
  public static ChildRun runAndKillAt(List<String> command, String pauseAt) throws IOException, InterruptedException {
    Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
    StringBuilder output = new StringBuilder();
    boolean paused = false;
    try (BufferedReader reader = new BufferedReader(
        new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
      String line;
      while ((line = reader.readLine()) != null) {
        output.append(line).append('\n');
        if (pauseAt != null && line.equals(ANNOUNCEMENT + pauseAt)) {
          paused = true;
          process.destroyForcibly();
          break;
        }
      }
    }
    if (!process.waitFor(120, TimeUnit.SECONDS)) {
      process.destroyForcibly();
      throw new IllegalStateException("child did not end: " + output);
    }
    return new ChildRun(paused, process.exitValue(), output.toString());
  }

  public static void reach(String name) {
    if (!name.equals(System.getProperty(PROPERTY))) {
      return;
    }
    System.err.println(ANNOUNCEMENT + name);
    System.err.flush();
    while (true) {
      try {
        Thread.sleep(60_000);
      } catch (InterruptedException e) {
        // Only a kill ends the pause: that is what the test is there to simulate.
      }
    }
  }
}
