package dev.kiln.exporter;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kiln.graph.ModelWriter;
import dev.kiln.optimizer.OptimizationReport;
import dev.kiln.optimizer.Optimizer;
import dev.kiln.optimizer.profiles.Component;
import dev.kiln.optimizer.profiles.Target;
import dev.kiln.testdata.Fixtures;
import dev.kiln.testdata.Opset;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Kiln's export optimizes like torch.onnx.export's: on every fixture and the tiny pipeline, every profile, the optimizer leaves the same
 * count of every fused op (everything it emits that the exporter never does: com.microsoft ops and
 * LayerNormalization) in both graphs.
 */
class FusionCountTest {
  /** The trained tiny pipeline's components, named {@code tiny-sd/<component>}. */
  private static final String TINY = "tiny-sd/";

  @TempDir static Path folder;

  static Stream<Arguments> cases() {
    List<Arguments> cases = new ArrayList<>();
    List<String> names = new ArrayList<>(Fixtures.torchScriptComponentNames());
    for (String component : List.of("text_encoder", "unet", "vae_decoder", "vae_encoder")) {
      names.add(TINY + component);
    }
    for (String name : names) {
      for (Target target : Target.values()) {
        cases.add(Arguments.of(name, target));
      }
    }
    return cases.stream();
  }

  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("cases")
  void sameFusedOpCounts(String name, Target target) {
    boolean tiny = name.startsWith(TINY);
    String kind = ComponentSpec.guess(tiny ? name.substring(TINY.length()) : name);
    Path source = tiny ? Fixtures.pipeline("tiny-sd-torchscript").resolve(kind).resolve("model.pt") : Fixtures.torchScript(name);
    Path reference = tiny ? Fixtures.pipeline("tiny-sd").resolve(kind).resolve("model.onnx") : Fixtures.component(name, Opset.V17);
    name = name.replace('/', '-');
    Component component = Component.parse(kind.startsWith("text_encoder") ? "text-encoder" : kind.replace('_', '-'));
    Path exported = folder.resolve(name + "-" + target + "-exported.onnx");
    ModelWriter.write(TorchScriptExporter.export(source, kind, 17).model(), exported);
    Optimizer.Options options = Optimizer.Options.of(target).withComponent(component);
    Map<String, Integer> ours = fused(Optimizer.optimize(exported, folder.resolve(name + "-" + target + "-ours.onnx"), options));
    Map<String, Integer> theirs = fused(Optimizer.optimize(reference,
        folder.resolve(name + "-" + target + "-theirs.onnx"), options));
    System.out.printf("fusions %s %s: kiln %s, torch.onnx.export %s%n", name, target, ours, theirs);
    assertEquals(theirs, ours, name + " " + target);
  }

  private static Map<String, Integer> fused(OptimizationReport report) {
    Map<String, Integer> counts = new TreeMap<>();
    for (Map.Entry<String, Integer> entry : report.components().get(0).opsAfter().entrySet()) {
      if (entry.getKey().contains("com.microsoft") || entry.getKey().contains("LayerNormalization")) {
        counts.put(entry.getKey(), entry.getValue());
      }
    }
    return counts;
  }
}
