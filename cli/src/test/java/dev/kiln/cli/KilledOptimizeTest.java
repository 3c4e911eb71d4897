package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.common.KillPoints;
import dev.kiln.graph.ExternalTensor;
import dev.kiln.graph.Model;
import dev.kiln.graph.ModelReader;
import dev.kiln.graph.ModelWriter;
import dev.kiln.graph.Value;
import dev.kiln.graph.WriteOptions;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code kiln optimize} killed (destroyForcibly, i.e. kill -9) in a child JVM while it replaces an earlier output:
 * the output is then exactly the old or exactly the new one (SHA-256 of every file it reaches), and the next run
 * leaves nothing else in the folder. Every staging moment is covered with a cheap child in common's
 * KilledOutputTest; here the real command at the moments that matter: half-way through the components, between
 * a model's data file and its graph, right after the swap, and while the old version is being deleted.
 */
class KilledOptimizeTest {
  private static final Path ROOT = Path.of(System.getProperty("kiln.root", ".."));
  private static final Path SD15 = ROOT.resolve("testdata/pipelines/sd15");

  @TempDir Path folder;
  /** The uninterrupted tensorrt output's snapshot, the same for every kill point. */
  private static Map<String, String> pipelineReference;

  @ParameterizedTest
  @ValueSource(strings = {"optimize-component-written", "folder-deleting-old"})
  void pipelineOutputIsOldOrNew(String point) throws Exception {
    Path pipeline = smallPipeline();
    Path output = folder.resolve("sd15-out");
    optimize(pipeline, output, "cpu");
    Map<String, String> old = snapshot(output);
    Map<String, String> fresh = pipelineReference;
    if (fresh == null) {
      Path reference = Files.createTempDirectory("kiln-reference").resolve("sd15-out");
      optimize(pipeline, reference, "tensorrt");
      fresh = pipelineReference = snapshot(reference);
    }
    assertNotEquals(old, fresh);
    killAt(point, pipeline, output, "tensorrt");
    assertEquals(point.equals("folder-deleting-old") ? fresh : old, snapshot(output), point);
    optimize(pipeline, output, "tensorrt");
    assertEquals(fresh, snapshot(output));
    try (Stream<Path> entries = Files.list(folder)) {
      assertEquals(3, entries.count(), "the input, the output link and its one version; the killed run's staging is gone");
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"file-companions-committed", "file-swapped", "file-deleting-old"})
  void modelWithDataFileIsOldOrNew(String point) throws Exception {
    // Two different models with external data: the output's graph and data file must never come from both.
    Path decoder = externalCopy(ROOT.resolve("testdata/fixtures/vae_decoder/opset17/model.onnx"), "decoder");
    Path encoder = externalCopy(ROOT.resolve("testdata/fixtures/vae_encoder/opset17/model.onnx"), "encoder");
    Path output = folder.resolve("out/vae.onnx");
    optimize(decoder, output, "cpu");
    Map<String, String> old = modelSnapshot(output);
    optimize(encoder, folder.resolve("reference/vae.onnx"), "cpu");
    Map<String, String> fresh = modelSnapshot(folder.resolve("reference/vae.onnx"));
    assertNotEquals(old.keySet(), fresh.keySet(), "the two data files have different content names");
    killAt(point, encoder, output, "cpu");
    assertEquals(point.equals("file-companions-committed") ? old : fresh, modelSnapshot(output), point);
    optimize(encoder, output, "cpu");
    try (Stream<Path> entries = Files.list(output.getParent())) {
      List<String> names = entries.map(path -> path.getFileName().toString()).sorted().toList();
      assertEquals(List.of("vae.onnx", fresh.keySet().stream().filter(name -> !name.equals("graph")).findFirst().orElseThrow()), names,
          "the graph and the one data file it names; temporaries and the stale data file are gone");
    }
  }

  /** sd15's layout with its two VAE models only: the kill lands between them, and a child JVM optimizes it in seconds. */
  private Path smallPipeline() throws Exception {
    Path pipeline = folder.resolve("vae-pipeline");
    for (String file : List.of("model_index.json", "scheduler/scheduler_config.json", "vae_decoder/config.json",
        "vae_decoder/model.onnx", "vae_encoder/config.json", "vae_encoder/model.onnx")) {
      Path target = pipeline.resolve(file);
      Files.createDirectories(target.getParent());
      Files.copy(SD15.resolve(file), target);
    }
    return pipeline;
  }

  private Path externalCopy(Path source, String name) {
    Model model = ModelReader.read(source);
    Path copy = folder.resolve("inputs/" + name + ".onnx");
    ModelWriter.write(model, copy, WriteOptions.externalAbove(4096));
    return copy;
  }

  private static void optimize(Path input, Path output, String target) {
    var run = InspectCommandTest.run("optimize", input.toString(), "-o", output.toString(), "--target", target);
    assertEquals(0, run.exitCode(), run.err());
  }

  private static void killAt(String point, Path input, Path output, String target) throws Exception {
    List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-D" + KillPoints.PROPERTY + "=" + point, "-cp",
        System.getProperty("java.class.path"), Main.class.getName(), "optimize", input.toString(), "-o", output.toString(),
        "--target", target));
    KillPoints.ChildRun child = KillPoints.runAndKillAt(command, point);
    assertTrue(child.paused(), "the child reached " + point + ": " + child.output());
  }

  /** Relative path → SHA-256 of every file reachable through the output folder (its link followed). */
  private static Map<String, String> snapshot(Path output) throws Exception {
    Map<String, String> hashes = new TreeMap<>();
    Path root = output.toRealPath();
    try (Stream<Path> walk = Files.walk(root)) {
      for (Path path : (Iterable<Path>) walk.filter(Files::isRegularFile).sorted()::iterator) {
        hashes.put(root.relativize(path).toString(), sha256(path));
      }
    }
    return hashes;
  }

  /** The graph's hash and, under its file name, the hash of every data file the graph reads. */
  private static Map<String, String> modelSnapshot(Path model) throws Exception {
    Map<String, String> hashes = new TreeMap<>();
    hashes.put("graph", sha256(model));
    for (Value initializer : ModelReader.read(model).graph().initializers()) {
      if (initializer.initializer() instanceof ExternalTensor external) {
        hashes.put(external.file().getFileName().toString(), sha256(external.file()));
      }
    }
    return hashes;
  }

  private static String sha256(Path file) throws Exception {
    return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(file)));
  }
}
