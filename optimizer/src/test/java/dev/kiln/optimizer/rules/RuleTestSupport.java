package dev.kiln.optimizer.rules;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.graph.GraphPrinter;
import dev.kiln.graph.Model;
import dev.kiln.graph.ModelReader;
import dev.kiln.graph.ModelWriter;
import dev.kiln.graph.Verifier;
import dev.kiln.optimizer.OrtParity;
import dev.kiln.optimizer.engine.DriverReport;
import dev.kiln.optimizer.engine.RewriteDriver;
import dev.kiln.optimizer.engine.Rule;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/** Runs rules on small models with the verifier after every sweep; golden text; ORT parity. */
final class RuleTestSupport {
  private RuleTestSupport() {}

  static DriverReport apply(Model model, Rule... rules) {
    return new RewriteDriver(List.of(rules), 16, Verifier::verify).run(model);
  }

  /** A copy of the model through the writer and reader (so the original stays for comparison). */
  static Model copy(Model model) {
    return ModelReader.read(write(model, "copy"));
  }

  static Path write(Model model, String name) {
    try {
      Path folder = Files.createTempDirectory("kiln-rule-test");
      Path path = folder.resolve(name + ".onnx");
      ModelWriter.write(model, path);
      return path;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** ORT parity of two models on random inputs (symbolic dims from {@code dimensions}). */
  static double parity(Model before, Model after, Map<String, Long> dimensions) {
    Path original = write(before, "before");
    Path rewritten = write(after, "after");
    var inputs = OrtParity.randomInputs(original, dimensions, 11, 10);
    return OrtParity.compare(original, rewritten, inputs).maxRelativeError();
  }

  /**
   * Compares "BEFORE / AFTER" printer text with src/test/resources/golden/{name}.txt. Run with
   * -Dkiln.updateGolden=true to rewrite the file, then review the diff like code.
   */
  static void assertGolden(String name, String before, String after) {
    String text = "# " + name + ": before\n" + before + "# after\n" + after;
    Path golden = Path.of(System.getProperty("kiln.root", "..")).resolve("optimizer/src/test/resources/golden/" + name + ".txt");
    try {
      if (Boolean.getBoolean("kiln.updateGolden") || !Files.exists(golden)) {
        Files.createDirectories(golden.getParent());
        Files.writeString(golden, text, StandardCharsets.UTF_8);
        assertTrue(Boolean.getBoolean("kiln.updateGolden"), "golden file " + golden + " was missing and has been written; review it");
      }
      assertEquals(Files.readString(golden, StandardCharsets.UTF_8), text, "golden " + golden);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  static String print(Model model) {
    return GraphPrinter.print(model);
  }
}
