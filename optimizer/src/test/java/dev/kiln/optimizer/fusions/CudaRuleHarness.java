package dev.kiln.optimizer.fusions;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kiln.graph.GraphPrinter;
import dev.kiln.graph.Model;
import dev.kiln.graph.ModelReader;
import dev.kiln.graph.ModelWriter;
import dev.kiln.graph.Node;
import dev.kiln.graph.OpType;
import dev.kiln.graph.Verifier;
import dev.kiln.optimizer.OrtParity;
import dev.kiln.optimizer.engine.DriverReport;
import dev.kiln.optimizer.engine.Rule;
import dev.kiln.optimizer.engine.RewriteDriver;
import dev.kiln.validator.lowering.Lowering;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * Runs CUDA-only rules on a site, proves the result on CPU (lower a copy, run both in ORT), and keeps golden
 * before/after text under src/test/resources/golden/cuda/ (rewrite them with -Dkiln.golden.update=true).
 */
final class CudaRuleHarness {
  private CudaRuleHarness() {}

  static DriverReport run(Model model, Rule... rules) {
    return new RewriteDriver(List.of(rules), 16, Verifier::verify).run(model);
  }

  static int count(Model model, OpType op) {
    int count = 0;
    for (Node node : model.graph().nodes()) {
      if (node.is(op)) {
        count++;
      }
    }
    return count;
  }

  static Path write(Model model, String name) {
    try {
      Path directory = Files.createTempDirectory("kiln-cuda-rule");
      directory.toFile().deleteOnExit();
      Path file = directory.resolve(name + ".onnx");
      ModelWriter.write(model, file);
      file.toFile().deleteOnExit();
      return file;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** The fused model, re-read from disk (a copy), lowered for ORT CPU and written again. */
  static Path lowered(Path fused) {
    Model copy = ModelReader.read(fused);
    Lowering.forOrtCpu().lower(copy);
    Verifier.verify(copy);
    return write(copy, "lowered");
  }

  /** Worst relative error of the lowered fused model against the original, on random inputs. */
  static double parity(Path original, Path fused, Map<String, Long> dimensions, long seed) {
    Map<String, OrtParity.Input> inputs = OrtParity.randomInputs(original, dimensions, seed, 10);
    return OrtParity.compare(original, lowered(fused), inputs).maxRelativeError();
  }

  /** Compares "before / after" printer text with the committed golden file. */
  static void assertGolden(String name, String before, String after) {
    String text = "# " + name + ": before\n" + before + "\n# after\n" + after;
    Path file = Path.of(System.getProperty("kiln.root", ".."))
        .resolve("optimizer/src/test/resources/golden/cuda").resolve(name + ".txt");
    try {
      if (Boolean.getBoolean("kiln.golden.update")) {
        Files.createDirectories(file.getParent());
        Files.writeString(file, text, StandardCharsets.UTF_8);
      }
      if (!Files.exists(file)) {
        throw new AssertionError("golden file " + file + " is missing; review and create it with -Dkiln.golden.update=true");
      }
      assertEquals(Files.readString(file, StandardCharsets.UTF_8), text, "golden " + file);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  static String print(Model model) {
    return GraphPrinter.print(model);
  }
}
