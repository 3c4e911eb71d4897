package dev.kiln.graph;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A model with more than 2 GiB of external data (one tensor of 2.4 GB) round-trips in a child JVM whose
 * heap is capped at 64 MiB: data is mapped and streamed, never loaded. The source data file is sparse.
 */
class LargeExternalDataTest {
  static final String HEAP = "-Xmx64m";

  @TempDir Path temporary;

  /**
   * The copy writes 2.4 GB; on a RAM-backed /dev/shm that takes seconds instead of a minute of disk I/O.
   * Falls back to the JUnit temporary folder where there is no such space.
   */
  private Path workFolder() throws IOException {
    Path shm = Path.of("/dev/shm");
    if (Files.isDirectory(shm) && Files.isWritable(shm) && Files.getFileStore(shm).getUsableSpace() > (6L << 30)) {
      return Files.createTempDirectory(shm, "kiln-large-");
    }
    return temporary;
  }

  @Test
  void moreThan2GiBOfExternalDataRoundTripsInASmallHeap() throws Exception {
    Path folder = workFolder();
    Path java = Path.of(System.getProperty("java.home"), "bin", "java");
    Process child = new ProcessBuilder(java.toString(), HEAP, "-cp", System.getProperty("java.class.path"),
        LargeExternalDataChild.class.getName(), folder.toString())
        .redirectErrorStream(true)
        .start();
    try {
      assertTrue(child.waitFor(5, TimeUnit.MINUTES), "child JVM timed out");
      String output = new String(child.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      assertEquals(0, child.exitValue(), output);
      long dataBytes = value(output, "dataBytes");
      long peakHeap = value(output, "peakHeapBytes");
      System.out.println("large external data: " + dataBytes + " bytes round-tripped with peak heap " + peakHeap + " bytes (" + HEAP + ")");
      assertTrue(dataBytes > (2L << 30), "the data must exceed 2 GiB: " + dataBytes);
      assertTrue(peakHeap < 64L << 20, "peak heap " + peakHeap);
      assertTrue(peakHeap * 30 < dataBytes, "heap stays a small fraction of the data");
    } finally {
      child.destroyForcibly();
      deleteRecursively(folder);
    }
  }

  private static long value(String output, String key) {
    for (String line : output.lines().toList()) {
      if (line.startsWith(key + "=")) {
        return Long.parseLong(line.substring(key.length() + 1).trim());
      }
    }
    throw new AssertionError("child printed no " + key + ": " + output);
  }

  private static void deleteRecursively(Path root) throws IOException {
    try (Stream<Path> paths = Files.walk(root)) {
      List<Path> all = paths.sorted(Comparator.reverseOrder()).toList();
      for (Path path : all) {
        Files.deleteIfExists(path);
      }
    }
  }
}
