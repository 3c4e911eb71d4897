package dev.kiln.common;

import java.io.PrintStream;
import java.util.Locale;

/**
 * A cheap trace of a command's phases for profiling: with the environment variable {@code KILN_PHASES} set, each
 * {@link #mark} prints one line on stderr, {@code kiln-phase NAME +MS ms (at MS ms) cpu +MS ms}: the wall time since
 * the previous mark and since the JVM started (so JVM start-up shows as the first mark's gap), and the CPU time all
 * the process's threads (JIT and GC included) spent since the previous mark, the steadier number on a shared
 * machine. Without it a mark costs one field read. Never part of any output a user reads; benchmarks
 * ({@code bench/precision.sh}) use it.
 */
public final class PhaseTimes {
  public static final String VARIABLE = "KILN_PHASES";

  private static final boolean ENABLED = System.getenv(VARIABLE) != null;
  private static final PrintStream OUT = System.err;
  private static long last = ENABLED ? jvmStartMillis() : 0;
  private static long lastCpu = 0;

  private PhaseTimes() {}

  public static boolean enabled() {
    return ENABLED;
  }

  /** The phase {@code name} ended now. */
  public static synchronized void mark(String name) {
    if (!ENABLED) {
      return;
    }
    long now = System.currentTimeMillis();
    long cpu = processCpuMillis();
    OUT.println(String.format(Locale.ROOT, "kiln-phase %-28s +%6d ms (at %6d ms) cpu +%6d ms", name, now - last, now - jvmStartMillis(),
        cpu - lastCpu));
    OUT.flush();
    last = now;
    lastCpu = cpu;
  }

  private static long processCpuMillis() {
    if (java.lang.management.ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.OperatingSystemMXBean os) {
      return os.getProcessCpuTime() / 1_000_000;
    }
    return 0;
  }

  private static long jvmStartMillis() {
    // The JVM's own record (ProcessHandle's start instant is only as exact as the kernel's boot time, a whole second).
    return java.lang.management.ManagementFactory.getRuntimeMXBean().getStartTime();
  }
}
