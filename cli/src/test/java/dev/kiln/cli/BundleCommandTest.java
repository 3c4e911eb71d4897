package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.bundle.BundleManifest;
import dev.kiln.testdata.ImageJudge;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code kiln bundle}: a bundle of the trained tiny pipeline, copied away from the repository, runs with nothing but
 * {@code java} on PATH and a throwaway HOME, and draws the same bytes as {@code kiln generate}; a changed file is
 * refused naming it; the same input bundles to the same bytes.
 */
class BundleCommandTest {
  static final Path ROOT = Path.of(System.getProperty("kiln.root", ".."));
  static final Path TINY = ROOT.resolve("testdata/pipelines/tiny-sd");
  static final String PROMPT = "a red circle on a white background";

  @Test
  void copiedBundleRunsOnABareJavaAndMatchesGenerate(@TempDir Path folder) throws Exception {
    Path bundle = folder.resolve("bundle");
    GenerateCommandTest.Run built = GenerateCommandTest.run("bundle", TINY.toString(), "-o", bundle.toString(), "--json");
    assertEquals(0, built.exitCode(), built.err());
    JsonNode summary = new ObjectMapper().readTree(built.out());
    assertEquals("cpu", summary.get("target").asText());
    JsonNode manifest = BundleManifest.read(bundle);
    List<String> lib = new ArrayList<>();
    manifest.get("files").fieldNames().forEachRemaining(name -> {
      if (name.startsWith("lib/")) {
        lib.add(name.substring(4));
      }
    });
    // Exactly the runner's runtime: launcher, runner, common, Jackson, ORT's CPU artifact; no CLI, optimizer or graph.
    assertTrue(lib.contains("onnxruntime-1.22.0.jar"), lib.toString());
    assertTrue(lib.stream().noneMatch(name -> name.contains("onnxruntime_gpu") || name.contains("kiln-cli") || name.contains("kiln-optimizer")
        || name.contains("kiln-graph") || name.contains("picocli") || name.contains("protobuf")), lib.toString());
    assertEquals(7, lib.size(), lib.toString());
    assertEquals("tiny-sd", manifest.get("pipeline").get("name").asText());
    assertEquals("fp32", manifest.get("target").get("precision").asText());
    assertTrue(manifest.get("target").get("opsets").get("unet").get("ai.onnx").asInt() > 0);
    assertTrue(manifest.get("provenance").get("source").get("files").has("unet/model.onnx"));
    assertFalse(manifest.get("provenance").get("kiln").get("commit").asText().isEmpty());

    // Copied with links followed to a folder of its own; a PATH with java alone; a HOME that is empty.
    Path copy = folder.resolve("elsewhere").resolve("deployed");
    copyFollowingLinks(bundle, copy);
    Path bin = Files.createDirectories(folder.resolve("path-with-java-only"));
    Files.createSymbolicLink(bin.resolve("java"), Path.of(System.getProperty("java.home"), "bin", "java"));
    Path home = Files.createDirectories(folder.resolve("home"));
    Path image = folder.resolve("bundle.png");
    Result run = launch(copy, bin, home, "--prompt", PROMPT, "--seed", "0", "--scheduler", "ddim", "--steps", "20", "-o", image.toString());
    assertEquals(0, run.code(), run.output());
    Path reference = folder.resolve("generate.png");
    GenerateCommandTest.Run generate = GenerateCommandTest.run("generate", TINY.toString(), "--prompt", PROMPT, "--seed", "0", "--scheduler", "ddim",
        "--steps", "20", "-o", reference.toString());
    assertEquals(0, generate.exitCode(), generate.err());
    assertArrayEquals(Files.readAllBytes(reference), Files.readAllBytes(image), "the bundle draws exactly what kiln generate draws");
    ImageJudge.Verdict verdict = ImageJudge.judge(ImageIO.read(image.toFile()));
    assertTrue(verdict.shows(ImageJudge.Colour.RED, ImageJudge.Shape.CIRCLE), verdict.toString());
    assertEquals(ImageJudge.Background.WHITE, verdict.background());

    // One changed byte in a tokenizer file: exit 2 naming it, and no image.
    Path vocabulary = copy.resolve("tokenizer/vocab.json");
    byte[] bytes = Files.readAllBytes(vocabulary);
    bytes[bytes.length / 2] ^= 1;
    Files.write(vocabulary, bytes);
    Path refused = folder.resolve("refused.png");
    Result tampered = launch(copy, bin, home, "--prompt", PROMPT, "--seed", "0", "--steps", "2", "-o", refused.toString());
    assertEquals(2, tampered.code(), tampered.output());
    assertTrue(tampered.output().contains("tokenizer/vocab.json"), tampered.output());
    assertEquals(1, tampered.output().strip().lines().count(), tampered.output());
    assertFalse(Files.exists(refused));
    // An added file is refused too: a bundle holds exactly what its manifest lists.
    Files.write(vocabulary, Files.readAllBytes(bundle.resolve("tokenizer/vocab.json")));
    Files.writeString(copy.resolve("unet/extra.onnx"), "x");
    Result added = launch(copy, bin, home, "--prompt", PROMPT, "--steps", "2", "-o", refused.toString());
    assertEquals(2, added.code(), added.output());
    assertTrue(added.output().contains("unet/extra.onnx"), added.output());
  }

  @Test
  void sameInputGivesByteIdenticalBundlesAndInspectShowsTheManifest(@TempDir Path folder) throws Exception {
    Path first = folder.resolve("first");
    Path second = folder.resolve("second");
    assertEquals(0, GenerateCommandTest.run("bundle", TINY.toString(), "-o", first.toString()).exitCode());
    assertEquals(0, GenerateCommandTest.run("bundle", TINY.toString(), "-o", second.toString()).exitCode());
    Map<String, Path> a = BundleManifest.files(first.toRealPath());
    Map<String, Path> b = BundleManifest.files(second.toRealPath());
    assertEquals(a.keySet(), b.keySet());
    for (String name : a.keySet()) {
      assertArrayEquals(Files.readAllBytes(a.get(name)), Files.readAllBytes(b.get(name)), name);
    }
    assertArrayEquals(Files.readAllBytes(first.resolve(BundleManifest.FILE)), Files.readAllBytes(second.resolve(BundleManifest.FILE)));
    assertTrue(Files.isRegularFile(first.resolve(BundleManifest.CREATED)), "the creation time is kept, outside the hashed content");
    assertEquals(a.size(), BundleManifest.verify(first));

    GenerateCommandTest.Run inspect = GenerateCommandTest.run("inspect", first.toString());
    assertEquals(0, inspect.exitCode(), inspect.err());
    assertTrue(inspect.out().startsWith("bundle tiny-sd (kiln-bundle format 1)"), inspect.out());
    assertTrue(inspect.out().contains("target: cpu, precision fp32, runtime com.microsoft.onnxruntime:onnxruntime:1.22.0"), inspect.out());
    GenerateCommandTest.Run json = GenerateCommandTest.run("inspect", first.toString(), "--json");
    assertEquals(0, json.exitCode(), json.err());
    assertEquals("kiln-bundle", new ObjectMapper().readTree(json.out()).get("bundle").get("format").asText());

    // kiln run accepts a bundle as its source: verified, then straight to generation.
    GenerateCommandTest.Run fromBundle = GenerateCommandTest.run("run", first.toString(), "--prompt", PROMPT, "--seed", "0", "--steps", "2",
        "--target", "cpu", "-o", folder.resolve("from-bundle.png").toString(), "--json");
    assertEquals(0, fromBundle.exitCode(), fromBundle.err());
    JsonNode stages = new ObjectMapper().readTree(fromBundle.out()).get("stages");
    assertEquals("given", stages.get(3).get("status").asText(), stages.toString());
    assertTrue(stages.get(3).get("detail").asText().startsWith("verified " + a.size() + " files"), stages.toString());

    // Bundling over a folder that is not Kiln's is refused (exit 2) before anything is written.
    Path mine = Files.createDirectories(folder.resolve("mine"));
    Files.writeString(mine.resolve("notes.txt"), "keep me");
    GenerateCommandTest.Run refused = GenerateCommandTest.run("bundle", TINY.toString(), "-o", mine.toString());
    assertEquals(2, refused.exitCode(), refused.err());
    assertEquals("keep me", Files.readString(mine.resolve("notes.txt")));
  }

  @Test
  void torchScriptIsPointedAtRun(@TempDir Path folder) {
    GenerateCommandTest.Run run = GenerateCommandTest.run("bundle", ROOT.resolve("testdata/pipelines/tiny-sd-torchscript").toString(), "-o",
        folder.resolve("b").toString());
    assertEquals(2, run.exitCode());
    assertTrue(run.err().contains("TorchScript"), run.err());
  }

  record Result(int code, String output) {}

  /** bin/generate under /bin/sh with PATH holding only java and HOME an empty folder: nothing else on the machine is used. */
  static Result launch(Path bundle, Path bin, Path home, String... arguments) throws IOException, InterruptedException {
    List<String> command = new ArrayList<>(List.of("/bin/sh", bundle.resolve("bin/generate").toString()));
    command.addAll(List.of(arguments));
    ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true);
    builder.environment().clear();
    builder.environment().put("PATH", bin.toString());
    builder.environment().put("HOME", home.toString());
    builder.environment().put("KILN_JAVA_OPTS", "-Xmx1g -Duser.home=" + home);
    Process process = builder.start();
    byte[] output = process.getInputStream().readAllBytes();
    assertTrue(process.waitFor(120, TimeUnit.SECONDS));
    return new Result(process.exitValue(), new String(output, StandardCharsets.UTF_8));
  }

  static void copyFollowingLinks(Path from, Path to) throws IOException {
    Path source = from.toRealPath();
    try (Stream<Path> walk = Files.walk(source)) {
      for (Path path : walk.toList()) {
        Path target = to.resolve(source.relativize(path).toString());
        if (Files.isDirectory(path)) {
          Files.createDirectories(target);
        } else {
          Files.copy(path, target, StandardCopyOption.COPY_ATTRIBUTES);
        }
      }
    }
  }
}
