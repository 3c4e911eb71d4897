package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code kiln generate} refuses a pipeline whose UNet points external data out of its folder, exactly as
 * {@code inspect} and {@code optimize} do, before ONNX Runtime opens (and reads) anything.
 */
class GenerateExternalDataTest {
  static final Path PIPELINE = Path.of(System.getProperty("kiln.root", "..")).resolve("runner/src/test/resources/pipelines/contract-sd");

  /**
   * Appends one more initializer to the UNet: protobuf merges a repeated GraphProto field (7) appended to a
   * ModelProto into the existing graph, so the model gains a float [2, 3] tensor with these external_data entries.
   */
  static void appendExternalInitializer(Path model, String... entries) throws IOException {
    ByteArrayOutputStream tensor = new ByteArrayOutputStream();
    field(tensor, 1, 0, 2);
    field(tensor, 1, 0, 3);
    field(tensor, 2, 0, 1);
    bytes(tensor, 8, "stolen".getBytes(StandardCharsets.UTF_8));
    for (int index = 0; index < entries.length; index += 2) {
      ByteArrayOutputStream entry = new ByteArrayOutputStream();
      bytes(entry, 1, entries[index].getBytes(StandardCharsets.UTF_8));
      bytes(entry, 2, entries[index + 1].getBytes(StandardCharsets.UTF_8));
      bytes(tensor, 13, entry.toByteArray());
    }
    field(tensor, 14, 0, 1);
    ByteArrayOutputStream graph = new ByteArrayOutputStream();
    bytes(graph, 5, tensor.toByteArray());
    ByteArrayOutputStream tail = new ByteArrayOutputStream();
    bytes(tail, 7, graph.toByteArray());
    Files.write(model, tail.toByteArray(), StandardOpenOption.APPEND);
  }

  private static void field(ByteArrayOutputStream out, int number, int wireType, long value) {
    varint(out, (long) number << 3 | wireType);
    varint(out, value);
  }

  private static void bytes(ByteArrayOutputStream out, int number, byte[] value) {
    varint(out, (long) number << 3 | 2);
    varint(out, value.length);
    out.writeBytes(value);
  }

  private static void varint(ByteArrayOutputStream out, long value) {
    while ((value & ~0x7fL) != 0) {
      out.write((int) (value & 0x7f) | 0x80);
      value >>>= 7;
    }
    out.write((int) value);
  }

  static Path copyPipeline(Path target) throws IOException {
    try (Stream<Path> files = Files.walk(PIPELINE)) {
      for (Path source : (Iterable<Path>) files::iterator) {
        Path destination = target.resolve(PIPELINE.relativize(source).toString());
        if (Files.isDirectory(source)) {
          Files.createDirectories(destination);
        } else {
          Files.copy(source, destination);
        }
      }
    }
    return target;
  }

  record Run(int exitCode, String out, String err) {}

  static Run generate(Path pipeline, Path output) {
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    int code = Main.execute(new String[] {"generate", pipeline.toString(), "--prompt", "x", "--steps", "2", "--seed", "1", "-o", output.toString()},
        new PrintWriter(out, true), new PrintWriter(err, true));
    return new Run(code, out.toString(), err.toString());
  }

  @Test
  void escapingExternalDataIsRefusedBeforeOnnxRuntimeSeesTheModel(@TempDir Path root) throws IOException {
    Path outside = Files.createDirectories(root.resolve("outside"));
    Files.write(outside.resolve("secret.bin"), new byte[24]);
    String[][] hostile = {
      {"../../outside/secret.bin", "contains '..'"},
      {outside.resolve("secret.bin").toString(), "is an absolute path"},
      {"link.bin", "symbolic link leading outside the model folder"},
    };
    int index = 0;
    for (String[] attack : hostile) {
      Path pipeline = copyPipeline(root.resolve("pipeline-" + index++));
      Files.createSymbolicLink(pipeline.resolve("unet/link.bin"), outside.resolve("secret.bin"));
      appendExternalInitializer(pipeline.resolve("unet/model.onnx"), "location", attack[0], "offset", "0", "length", "24");
      Path output = root.resolve("out-" + index + ".png");
      Run run = generate(pipeline, output);
      assertEquals(2, run.exitCode(), run.err());
      assertEquals(1, run.err().strip().lines().count(), run.err());
      assertTrue(run.err().contains(pipeline.resolve("unet/model.onnx").toString()), run.err());
      assertTrue(run.err().contains("tensor 'stolen'") && run.err().contains(attack[1]), run.err());
      assertFalse(Files.exists(output));
    }
  }

  @Test
  void externalDataInsideTheFolderStillRuns(@TempDir Path root) throws IOException {
    Path pipeline = copyPipeline(root.resolve("copy/contract-sd"));
    Files.write(pipeline.resolve("unet/weights.bin"), new byte[24]);
    appendExternalInitializer(pipeline.resolve("unet/model.onnx"), "location", "weights.bin", "offset", "0", "length", "24");
    Path reference = root.resolve("reference.png");
    Path output = root.resolve("out.png");
    assertEquals(0, generate(PIPELINE, reference).exitCode());
    Run run = generate(pipeline, output);
    assertEquals(0, run.exitCode(), run.err());
    assertTrue(java.util.Arrays.equals(Files.readAllBytes(reference), Files.readAllBytes(output)), "same image, same PNG bytes");
  }
}
