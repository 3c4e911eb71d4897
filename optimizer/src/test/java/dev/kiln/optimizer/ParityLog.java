package dev.kiln.optimizer;

import dev.kiln.optimizer.OptimizationReport.ComponentReport;
import dev.kiln.optimizer.profiles.Target;
import dev.kiln.testdata.Opset;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/** Collects the fixture proof's numbers into target/fixture-fusion-table.tsv for the issue note (not an assertion). */
final class ParityLog {
  private record Row(int before, int after, double[] errors, String fused) {}

  private static final Map<String, Row> ROWS = new TreeMap<>();

  private ParityLog() {}

  static synchronized void record(String name, Opset opset, Target target, int set, double error, ComponentReport report) {
    String key = name + "\t" + opset.version() + "\t" + target.id();
    StringBuilder fused = new StringBuilder();
    report.opsAfter().forEach((op, count) -> {
      if (op.startsWith("com.microsoft:") || op.equals("LayerNormalization")) {
        fused.append(op.replace("com.microsoft:", "")).append('=').append(count).append(' ');
      }
    });
    Row row = ROWS.computeIfAbsent(key, ignored -> {
      double[] errors = new double[3];
      Arrays.fill(errors, Double.NaN);
      return new Row(report.nodesBefore(), report.nodesAfter(), errors, fused.toString().trim());
    });
    row.errors()[set] = error;
    StringBuilder text = new StringBuilder("fixture\topset\ttarget\tnodes before\tnodes after\terr set0\terr set1\terr new\tfused\n");
    ROWS.forEach((rowKey, value) -> {
      text.append(rowKey).append('\t').append(value.before()).append('\t').append(value.after());
      for (double each : value.errors()) {
        text.append('\t').append(Double.isNaN(each) ? "-" : String.format(Locale.ROOT, "%.1e", each));
      }
      text.append('\t').append(value.fused()).append('\n');
    });
    try {
      Path out = Path.of(System.getProperty("kiln.root", "..")).resolve("optimizer/target/fixture-fusion-table.tsv");
      Files.createDirectories(out.getParent());
      Files.writeString(out, text.toString());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
