package dev.kiln.validator.bench;

import dev.kiln.common.Json;
import dev.kiln.common.KilnException;
import dev.kiln.validator.quality.QualityGate;
import dev.kiln.validator.quality.QualityGrid;
import dev.kiln.validator.quality.QualityReport;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * {@code kiln compare} for many candidates against one reference, drawing the reference once (bench/quality.sh):
 * the reports are the ones {@code kiln compare REF CANDIDATE --grid G --json} prints. Candidates draw two at a time,
 * one ORT thread each. Not a test. Args: REFERENCE GRID OUT_DIR NAME=CANDIDATE...; writes OUT_DIR/NAME.compare.json
 * (or {"variant", "error"} with the one-line refusal) and prints each candidate's wall time.
 */
public final class QualityBenchmark {
  private QualityBenchmark() {}

  public static void main(String[] args) throws Exception {
    Path reference = Path.of(args[0]);
    QualityGrid grid = QualityGrid.parse(args[1]);
    Path out = Path.of(args[2]);
    long start = System.nanoTime();
    QualityGate.Drawing wanted = QualityGate.draw(reference, grid, () -> { });
    System.out.printf("reference: %d images in %.1f s%n", grid.images(), (System.nanoTime() - start) / 1e9);
    ExecutorService workers = Executors.newFixedThreadPool(2);
    List<Future<String>> done = new ArrayList<>();
    for (int i = 3; i < args.length; i++) {
      String name = args[i].substring(0, args[i].indexOf('='));
      Path candidate = Path.of(args[i].substring(args[i].indexOf('=') + 1));
      done.add(workers.submit(() -> {
        long begin = System.nanoTime();
        String text;
        try {
          QualityReport report = QualityGate.judge(reference.toString(), wanted, candidate.toString(), QualityGate.draw(candidate, grid, () -> { }));
          text = Json.write(report);
        } catch (KilnException e) {
          text = Json.write(Map.of("variant", name, "error", e.getMessage()));
        }
        write(out.resolve(name + ".compare.json"), text + "\n");
        return String.format("%s: %d images in %.1f s", name, grid.images(), (System.nanoTime() - begin) / 1e9);
      }));
    }
    for (Future<String> result : done) {
      System.out.println(result.get());
    }
    workers.shutdown();
  }

  private static void write(Path file, String text) {
    try {
      Files.writeString(file, text);
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }
}
