package dev.kiln.common;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The model-file scan the runner applies before ONNX Runtime opens a model: hand-encoded ONNX protobufs with
 * external tensors in every place a tensor can live, escaping locations, and malformed wire data.
 */
class ExternalDataRulesTest {
  @TempDir Path root;
  private Path folder;

  @BeforeEach
  void layOut() throws IOException {
    folder = Files.createDirectories(root.resolve("unet"));
    Files.createDirectories(root.resolve("outside"));
    Files.write(folder.resolve("weights.bin"), new byte[24]);
    Files.write(root.resolve("outside/secret.bin"), new byte[24]);
  }

  /** Protobuf wire encoding, just enough for these tests. */
  static final class Wire {
    final ByteArrayOutputStream out = new ByteArrayOutputStream();

    Wire varint(int field, long value) {
      tag(field, 0);
      raw(value);
      return this;
    }

    Wire bytes(int field, byte[] value) {
      tag(field, 2);
      raw(value.length);
      out.writeBytes(value);
      return this;
    }

    Wire text(int field, String value) {
      return bytes(field, value.getBytes(StandardCharsets.UTF_8));
    }

    Wire message(int field, Wire value) {
      return bytes(field, value.out.toByteArray());
    }

    private void tag(int field, int wireType) {
      raw((long) field << 3 | wireType);
    }

    private void raw(long value) {
      while ((value & ~0x7fL) != 0) {
        out.write((int) (value & 0x7f) | 0x80);
        value >>>= 7;
      }
      out.write((int) value);
    }

    byte[] toBytes() {
      return out.toByteArray();
    }
  }

  static Wire external(String name, String... entries) {
    Wire tensor = new Wire().varint(1, 2).varint(1, 3).varint(2, 1).text(8, name);
    for (int index = 0; index < entries.length; index += 2) {
      tensor.message(13, new Wire().text(1, entries[index]).text(2, entries[index + 1]));
    }
    return tensor.varint(14, 1);
  }

  static Wire inlineTensor(String name) {
    return new Wire().varint(1, 2).varint(2, 1).text(8, name).bytes(9, new byte[8]);
  }

  static Wire model(Wire graph) {
    return new Wire().varint(1, 8).text(2, "test").message(7, graph).message(8, new Wire().varint(2, 17));
  }

  private Path write(Wire model) throws IOException {
    Path file = folder.resolve("model.onnx");
    Files.write(file, model.toBytes());
    return file;
  }

  private String refused(Wire model, String why) throws IOException {
    Path file = write(model);
    KilnException.BadInput error = assertThrows(KilnException.BadInput.class, () -> ExternalDataRules.checkModel(file));
    assertTrue(error.getMessage().startsWith(file.toString()), error.getMessage());
    assertTrue(error.getMessage().contains(why), error.getMessage());
    assertEquals(1, error.getMessage().lines().count(), error.getMessage());
    return error.getMessage();
  }

  @Test
  void inlineAndWellFormedExternalTensorsPass() throws IOException {
    Wire graph = new Wire().message(5, inlineTensor("a")).message(5, external("w", "location", "weights.bin", "offset", "0", "length", "24"));
    Path file = write(model(graph));
    assertDoesNotThrow(() -> ExternalDataRules.checkModel(file));
  }

  @Test
  void escapingLocationsAreRefusedWherever() throws IOException {
    refused(model(new Wire().message(5, external("w", "location", "../outside/secret.bin"))), "contains '..'");
    refused(model(new Wire().message(5, external("w", "location", root.resolve("outside/secret.bin").toString()))), "is an absolute path");
    Files.createSymbolicLink(folder.resolve("link.bin"), root.resolve("outside/secret.bin"));
    refused(model(new Wire().message(5, external("w", "location", "link.bin"))), "symbolic link leading outside the model folder");
    refused(model(new Wire().message(5, external("w", "location", "weights.bin", "offset", "16"))), "has length 8 bytes, but shape [2,3] of FLOAT needs 24 bytes");
    refused(model(new Wire().message(5, external("w", "location", "weights.bin", "offset", "8", "length", "24"))),
        "offset 8 + length 24 = 32 is beyond the end of the file (24 bytes)");
    refused(model(new Wire().message(5, external("w", "location", "nowhere.bin"))), "does not exist");
  }

  @Test
  void tensorsInsideAttributesSubgraphsSparseTensorsFunctionsAndTrainingGraphsAreChecked() throws IOException {
    Wire escaping = external("deep", "location", "../outside/secret.bin");
    Wire constant = new Wire().text(4, "Constant").message(5, new Wire().text(1, "value").message(5, escaping).varint(20, 4));
    refused(model(new Wire().message(1, constant)), "tensor 'deep'");
    Wire subgraph = new Wire().message(1, constant);
    Wire ifNode = new Wire().text(4, "If").message(5, new Wire().text(1, "then_branch").message(6, subgraph).varint(20, 5));
    refused(model(new Wire().message(1, ifNode)), "tensor 'deep'");
    Wire loopBodies = new Wire().text(4, "Custom").message(5, new Wire().text(1, "bodies").message(11, subgraph).varint(20, 10));
    refused(model(new Wire().message(1, loopBodies)), "tensor 'deep'");
    Wire sparse = new Wire().message(1, escaping).message(2, inlineTensor("indices")).varint(3, 2).varint(3, 3);
    refused(model(new Wire().message(15, sparse)), "tensor 'deep'");
    refused(new Wire().message(25, new Wire().text(1, "f").message(7, constant)), "tensor 'deep'");
    refused(new Wire().message(20, new Wire().message(1, new Wire().message(5, escaping))), "tensor 'deep'");
    Wire tensors = new Wire().text(4, "Custom").message(5, new Wire().text(1, "list").message(10, inlineTensor("ok")).message(10, escaping));
    refused(model(new Wire().message(1, tensors)), "tensor 'deep'");
  }

  @Test
  void everyNodeIsReportedWithItsDomainIncludingSubgraphs() throws IOException {
    Wire inner = new Wire().message(1, new Wire().text(4, "NhwcConv").text(7, "com.microsoft"));
    Wire ifNode = new Wire().text(4, "If").message(5, new Wire().text(1, "then_branch").message(6, inner).varint(20, 5));
    Path file = write(model(new Wire().message(1, new Wire().text(4, "Conv")).message(1, ifNode)));
    java.util.List<String> seen = new java.util.ArrayList<>();
    ExternalDataRules.checkModel(file, (domain, type) -> seen.add(domain + ":" + type));
    assertEquals(java.util.List.of(":Conv", "com.microsoft:NhwcConv", ":If"), seen);
  }

  @Test
  void controlCharactersInNamesAreEscaped() throws IOException {
    String message = refused(model(new Wire().message(5, external("evil\n\u001b[31m", "location", "../x\n"))), "contains '..'");
    assertTrue(message.contains("evil\\n\\x1b[31m"), message);
  }

  @Test
  void malformedWireDataIsBadInput() throws IOException {
    byte[] valid = model(new Wire().message(5, inlineTensor("a")).message(5, external("w", "location", "weights.bin"))).toBytes();
    Path file = folder.resolve("model.onnx");
    Files.write(file, java.util.Arrays.copyOf(valid, valid.length - 3));
    assertThrows(KilnException.BadInput.class, () -> ExternalDataRules.checkModel(file));
    Files.write(file, new byte[] {(byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff,
        (byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff});
    assertThrows(KilnException.BadInput.class, () -> ExternalDataRules.checkModel(file));
    Wire nested = new Wire().message(5, external("w", "location", "../outside/secret.bin"));
    for (int depth = 0; depth < 150; depth++) {
      Wire attribute = new Wire().message(6, nested);
      nested = new Wire().message(1, new Wire().message(5, attribute));
    }
    refused(model(nested), "nest deeper than 100 levels");
  }

  /** Random corruptions of a valid model end in a BadInput or pass, never in another exception. */
  @Test
  void corruptedModelsOnlyEverFailAsBadInput() {
    byte[] valid = model(new Wire().message(5, inlineTensor("a")).message(5, external("w", "location", "weights.bin"))
        .message(1, new Wire().text(4, "If").message(5, new Wire().message(6, new Wire().message(5, external("x", "location", "weights.bin"))))))
        .toBytes();
    ExternalDataRules rules = new ExternalDataRules(folder.resolve("model.onnx"));
    Random random = new Random(9);
    int refused = 0;
    for (int trial = 0; trial < 20_000; trial++) {
      byte[] corrupted = valid.clone();
      for (int flips = 1 + random.nextInt(4); flips > 0; flips--) {
        corrupted[random.nextInt(corrupted.length)] = (byte) random.nextInt(256);
      }
      int cut = random.nextInt(8) == 0 ? random.nextInt(corrupted.length) : corrupted.length;
      try {
        ExternalDataScan.scan(ByteBuffer.wrap(corrupted, 0, cut), rules, (domain, type) -> {});
      } catch (KilnException.BadInput expected) {
        refused++;
      }
    }
    assertTrue(refused > 1000, "refused " + refused);
  }
}
