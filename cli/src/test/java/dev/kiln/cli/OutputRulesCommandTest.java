package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.common.OutputTarget;
import dev.kiln.runner.image.PngText;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What {@code kiln optimize} and {@code kiln generate} may write over: never an input (or anything containing or
 * inside one), never the working folder, a previous Kiln output always, anything else only with --overwrite.
 */
class OutputRulesCommandTest {
  private static final Path ROOT = Path.of(System.getProperty("kiln.root", ".."));
  private static final Path PIPELINE = ROOT.resolve("testdata/pipelines/sd15");
  private static final Path VAE = ROOT.resolve("testdata/fixtures/vae_decoder/opset17/model.onnx");

  @TempDir Path folder;

  private static InspectCommandTest.Run run(String... arguments) {
    return InspectCommandTest.run(arguments);
  }

  /** A copy of the sd15 pipeline with its links resolved, so the test may point outputs around it. */
  private Path pipelineCopy() throws Exception {
    Path copy = folder.resolve("work/sd15");
    try (Stream<Path> walk = Files.walk(PIPELINE)) {
      for (Path path : (Iterable<Path>) walk::iterator) {
        Path target = copy.resolve(PIPELINE.relativize(path).toString());
        if (Files.isDirectory(path)) {
          Files.createDirectories(target);
        } else {
          Files.copy(path, target);
        }
      }
    }
    return copy;
  }

  private static Map<String, Long> sizes(Path root) throws Exception {
    Map<String, Long> sizes = new TreeMap<>();
    try (Stream<Path> walk = Files.walk(root)) {
      for (Path path : (Iterable<Path>) walk.filter(Files::isRegularFile)::iterator) {
        sizes.put(root.relativize(path).toString(), Files.size(path));
      }
    }
    return sizes;
  }

  @Test
  void optimizeNeverWritesOverItsInput() throws Exception {
    Path input = pipelineCopy();
    Map<String, Long> before = sizes(folder);
    for (Path output : List.of(input, input.getParent(), input.resolve("unet"), input.resolve("nested/out"))) {
      var run = run("optimize", input.toString(), "-o", output.toString(), "--target", "cpu", "--overwrite");
      assertEquals(2, run.exitCode(), output + ": " + run.err());
      assertEquals(1, run.err().lines().count(), run.err());
      assertTrue(run.err().startsWith("kiln: -o " + output + ": the output "), run.err());
      assertTrue(run.err().contains(" the input " + input + "; "), "names both: " + run.err());
    }
    assertEquals(before, sizes(folder), "nothing written, nothing deleted");
  }

  @Test
  void optimizeNeverReplacesTheWorkingFolder() throws Exception {
    Path working = Path.of("").toAbsolutePath();
    Map<String, Long> before = sizes(working.resolve("src"));
    Path input = pipelineCopy();
    for (String output : List.of(".", working.toString(), "..")) {
      var run = run("optimize", input.toString(), "-o", output, "--target", "cpu", "--overwrite");
      assertEquals(2, run.exitCode(), run.err());
      assertEquals("kiln: -o " + output + ": the output is the working folder or contains it; Kiln never replaces the folder "
          + "you are in, name a new folder", run.err().strip());
    }
    assertEquals(before, sizes(working.resolve("src")));
  }

  @Test
  void optimizeReplacesItsOwnOutputButNotSomeoneElsesWithoutOverwrite() throws Exception {
    Path output = Files.createDirectories(folder.resolve("mine"));
    Files.writeString(output.resolve("notes.txt"), "keep me");
    var refused = run("optimize", PIPELINE.toString(), "-o", output.toString(), "--target", "cpu");
    assertEquals(2, refused.exitCode());
    assertEquals("kiln: -o " + output + ": a folder that is not a Kiln output is already there; pass --overwrite to replace it",
        refused.err().strip());
    assertEquals("keep me", Files.readString(output.resolve("notes.txt")));

    Path kiln = folder.resolve("sd15-cpu");
    assertEquals(0, run("optimize", PIPELINE.toString(), "-o", kiln.toString(), "--target", "cpu").exitCode());
    var again = run("optimize", PIPELINE.toString(), "-o", kiln.toString(), "--target", "cuda");
    assertEquals(0, again.exitCode(), "a previous Kiln output is replaced: " + again.err());
    assertTrue(OutputTarget.isKilnFolder(kiln));
    assertTrue(Files.isSymbolicLink(kiln));
    assertTrue(Files.readString(kiln.resolve(OutputTarget.MARKER)).contains("\"command\" : \"optimize\""));

    var overwritten = run("optimize", PIPELINE.toString(), "-o", output.toString(), "--target", "cpu", "--overwrite");
    assertEquals(0, overwritten.exitCode(), overwritten.err());
    assertFalse(Files.exists(output.resolve("notes.txt")), "--overwrite replaced the folder");
    assertTrue(Files.isRegularFile(output.resolve("unet/model.onnx")));
    try (Stream<Path> entries = Files.list(folder)) {
      assertEquals(4, entries.count(), "two links and their two versions; the replaced folder is gone");
    }
  }

  @Test
  void optimizeModelFileAndReportFollowTheSameRules() throws Exception {
    Path output = Files.writeString(folder.resolve("vae.onnx"), "not a model of Kiln's");
    Path report = Files.writeString(folder.resolve("report.json"), "{\"mine\": true}");
    var refused = run("optimize", VAE.toString(), "-o", output.toString(), "--target", "cpu");
    assertEquals("kiln: -o " + output + ": a file Kiln did not write is already there; pass --overwrite to replace it",
        refused.err().strip());
    var reportRefused = run("optimize", VAE.toString(), "-o", folder.resolve("other.onnx").toString(), "--target", "cpu", "--report",
        report.toString());
    assertEquals("kiln: --report " + report + ": a file Kiln did not write is already there; pass --overwrite to replace it",
        reportRefused.err().strip());
    assertFalse(Files.exists(folder.resolve("other.onnx")), "refused before optimizing");
    assertEquals(0, run("optimize", VAE.toString(), "-o", output.toString(), "--target", "cpu", "--overwrite", "--report",
        report.toString()).exitCode());
    var rerun = run("optimize", VAE.toString(), "-o", output.toString(), "--target", "cuda", "--report", report.toString());
    assertEquals(0, rerun.exitCode(), "Kiln's model and report are replaced without --overwrite: " + rerun.err());
    assertTrue(Files.readString(report).contains("\"producer\" : \"kiln optimize\""));
    var same = run("optimize", VAE.toString(), "-o", VAE.toString(), "--target", "cpu", "--overwrite");
    assertEquals(2, same.exitCode());
    assertTrue(same.err().contains("the output is the input " + VAE), same.err());
  }

  @Test
  void componentIsRefusedForAPipelineFolder() {
    var run = run("optimize", PIPELINE.toString(), "-o", folder.resolve("out").toString(), "--target", "cpu", "--component", "unet");
    assertEquals(2, run.exitCode());
    assertEquals("kiln: --component unet: a pipeline folder's components are known from their sub-folders; --component "
        + "applies to a single .onnx file only", run.err().strip());
    assertFalse(Files.exists(folder.resolve("out")));
  }

  @Test
  void generateReplacesOnlyItsOwnPngs() throws Exception {
    Path png = Files.write(folder.resolve("photo.png"), new byte[] {1, 2, 3});
    String[] arguments = {"generate", GenerateCommandTest.PIPELINE.toString(), "--prompt", "a red circle", "--seed", "1", "--steps",
        "2", "-o", png.toString()};
    var refused = run(arguments);
    assertEquals(2, refused.exitCode());
    assertEquals("kiln: -o " + png + ": a file Kiln did not write is already there; pass --overwrite to replace it",
        refused.err().strip());
    assertArrayEquals(new byte[] {1, 2, 3}, Files.readAllBytes(png));
    String[] overwriting = java.util.Arrays.copyOf(arguments, arguments.length + 1);
    overwriting[arguments.length] = "--overwrite";
    assertEquals(0, run(overwriting).exitCode());
    assertEquals("Kiln", PngText.read(Files.readAllBytes(png)).get("Software"));
    var again = run(arguments);
    assertEquals(0, again.exitCode(), "a Kiln PNG is replaced without --overwrite: " + again.err());
    var intoInput = run("generate", GenerateCommandTest.PIPELINE.toString(), "--prompt", "x", "--steps", "1", "-o",
        GenerateCommandTest.PIPELINE.resolve("out.png").toString());
    assertEquals(2, intoInput.exitCode());
    assertTrue(intoInput.err().contains("lies inside the input"), intoInput.err());
  }
}
