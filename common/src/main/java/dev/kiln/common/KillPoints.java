package dev.kiln.common;

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
