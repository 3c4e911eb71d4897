package dev.kiln.graph;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import dev.kiln.common.KilnException;
import dev.kiln.graph.proto.OnnxProto.GraphProto;
import dev.kiln.graph.proto.OnnxProto.ModelProto;
import dev.kiln.graph.proto.OnnxProto.TensorProto;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Malformed files end in KilnException.BadInput naming the file and the problem, never a raw protobuf or NPE trace. */
class MalformedInputTest {
  @TempDir Path folder;

  private static GraphProto.Builder chain() {
    // x -> Relu -> a -> Neg -> y
    return GraphProto.newBuilder()
        .setName("chain")
        .addInput(Protos.floatInfo("x", 4))
        .addNode(Protos.node("Relu", List.of("x"), List.of("a")).toBuilder().setName("relu"))
        .addNode(Protos.node("Neg", List.of("a"), List.of("y")).toBuilder().setName("neg"))
        .addOutput(Protos.floatInfo("y", 4));
  }

  private String rejected(Path file, String... fragments) {
    KilnException.BadInput error = assertThrows(KilnException.BadInput.class, () -> ModelReader.read(file));
    String message = error.getMessage();
    assertTrue(message.startsWith(file.toString() + ": "), "names the file: " + message);
    for (String fragment : fragments) {
      assertTrue(message.contains(fragment), "mentions '" + fragment + "': " + message);
    }
    return message;
  }

  private Path file(String name, ModelProto model) {
    return Protos.write(folder.resolve(name), model);
  }

  @Test
  void theValidChainReads() {
    ModelReader.read(file("ok.onnx", Protos.model(chain().build())));
  }

  @Test
  void truncatedFileIsRejected() {
    byte[] whole = Protos.model(chain().build()).toByteArray();
    for (int cut : new int[] {whole.length - 1, whole.length / 2, 7}) {
      Path file = Protos.write(folder.resolve("truncated" + cut + ".onnx"), Arrays.copyOf(whole, cut));
      rejected(file, "not a valid ONNX model");
    }
    Path file = Protos.write(folder.resolve("truncated.onnx"), Arrays.copyOf(whole, whole.length / 2));
    rejected(file, "truncated");
  }

  @Test
  void knownFieldWithWrongWireTypeIsRejected() throws IOException {
    // ir_version (field 1) must be a varint; here it arrives length-delimited: tag (1 << 3 | 2).
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    bytes.write(new byte[] {(byte) 0x0a, 3, 'a', 'b', 'c'});
    bytes.write(Protos.model(chain().build()).toBuilder().clearIrVersion().build().toByteArray());
    Path file = Protos.write(folder.resolve("wiretype.onnx"), bytes.toByteArray());
    rejected(file, "field 'ir_version' (number 1) of ModelProto has the wrong wire type");
  }

  @Test
  void wrongWireTypeDeepInsideANodeIsRejected() {
    // NodeProto.op_type (field 4) sent as a varint.
    ModelProto model = Protos.model(chain().build());
    GraphProto graph = model.getGraph();
    var node = graph.getNode(0).toBuilder()
        .setUnknownFields(com.google.protobuf.UnknownFieldSet.newBuilder()
            .addField(4, com.google.protobuf.UnknownFieldSet.Field.newBuilder().addVarint(7).build())
            .build());
    Path file = file("nodewire.onnx", model.toBuilder().setGraph(graph.toBuilder().setNode(0, node)).build());
    rejected(file, "node 'relu' (Relu)", "field 'op_type' (number 4) of NodeProto has the wrong wire type");
  }

  @Test
  void invalidWireTypeIsRejected() {
    byte[] bytes = {(byte) 0x0f, 1, 2, 3};
    rejected(Protos.write(folder.resolve("invalid.onnx"), bytes), "not a valid ONNX model");
  }

  @Test
  void cycleIsRejected() {
    // relu consumes neg's output and neg consumes relu's: a -> b -> a.
    GraphProto graph = GraphProto.newBuilder()
        .setName("loop")
        .addInput(Protos.floatInfo("x", 4))
        .addNode(Protos.node("Add", List.of("x", "b"), List.of("a")).toBuilder().setName("first"))
        .addNode(Protos.node("Neg", List.of("a"), List.of("b")).toBuilder().setName("second"))
        .addOutput(Protos.floatInfo("b", 4))
        .build();
    rejected(file("cycle.onnx", Protos.model(graph)), "node 'first' (Add) input 1 'b'", "form a cycle",
        "node 'first' (Add) -> node 'second' (Neg) -> node 'first' (Add)");
  }

  @Test
  void nodesOutOfTopologicalOrderAreRejected() {
    GraphProto graph = chain().clearNode()
        .addNode(Protos.node("Neg", List.of("a"), List.of("y")).toBuilder().setName("neg"))
        .addNode(Protos.node("Relu", List.of("x"), List.of("a")).toBuilder().setName("relu"))
        .build();
    rejected(file("order.onnx", Protos.model(graph)), "input 0 'a'", "produced later by node 'relu' (Relu)", "not in topological order");
  }

  @Test
  void duplicateValueNamesAreRejected() {
    GraphProto twice = chain().addNode(Protos.node("Abs", List.of("x"), List.of("a")).toBuilder().setName("abs")).build();
    rejected(file("duplicate.onnx", Protos.model(twice)), "value 'a' is produced twice", "node 'relu'", "node 'abs'");

    GraphProto shadowsInput = chain().addNode(Protos.node("Abs", List.of("a"), List.of("x")).toBuilder().setName("abs")).build();
    rejected(file("shadow.onnx", Protos.model(shadowsInput)), "value 'x' is produced twice", "graph input or initializer");

    GraphProto twoInitializers = chain()
        .addInitializer(Protos.floatTensor("w", new long[] {1}, 1f))
        .addInitializer(Protos.floatTensor("w", new long[] {1}, 2f))
        .build();
    rejected(file("init.onnx", Protos.model(twoInitializers)), "initializer 'w' twice");

    GraphProto twoInputs = chain().addInput(Protos.floatInfo("x", 4)).build();
    rejected(file("inputs.onnx", Protos.model(twoInputs)), "input 'x' twice");
  }

  @Test
  void missingInputIsRejected() {
    GraphProto graph = chain().setNode(1, Protos.node("Add", List.of("a", "nowhere"), List.of("y")).toBuilder().setName("add")).build();
    rejected(file("missing.onnx", Protos.model(graph)), "node 'add' (Add) input 1 'nowhere'", "is missing");
  }

  @Test
  void unproducedGraphOutputIsRejected() {
    GraphProto graph = chain().addOutput(Protos.floatInfo("ghost", 4)).build();
    rejected(file("ghost.onnx", Protos.model(graph)), "output 'ghost' is not produced");
  }

  @Test
  void inlineTensorWithWrongByteCountIsRejected() {
    TensorProto shortWeight = Protos.floatTensor("w", new long[] {4}, 1, 2, 3);
    rejected(file("short.onnx", Protos.addModel(shortWeight.toBuilder().clearDims().addDims(4).build())), "initializer 'w'",
        "12 bytes of raw_data, but shape [4] of FLOAT needs 16 bytes");
    TensorProto typed = TensorProto.newBuilder().setName("w").setDataType(1).addDims(4).addFloatData(1).addFloatData(2).build();
    rejected(file("typed.onnx", Protos.addModel(typed)), "initializer 'w' holds 2 values, but its shape [4] needs 4");
  }

  @Test
  void unknownTensorTypeAndNegativeDimsAreRejected() {
    TensorProto strange = TensorProto.newBuilder().setName("w").setDataType(99).addDims(1).setRawData(ByteString.copyFrom(new byte[4])).build();
    rejected(file("type.onnx", Protos.addModel(strange)), "initializer 'w' has data type 99");
    TensorProto negative = Protos.floatTensor("w", new long[] {1}, 1f).toBuilder().setDims(0, -1).build();
    rejected(file("negative.onnx", Protos.addModel(negative)), "negative dimension -1");
  }

  @Test
  void nodeWithoutOpTypeIsRejected() {
    GraphProto graph = chain().setNode(0, Protos.node("", List.of("x"), List.of("a"))).build();
    rejected(file("noop.onnx", Protos.model(graph)), "node #0 () has no op_type");
  }

  @Test
  void filesThatAreNotModelsAreRejected() throws IOException {
    rejected(Protos.write(folder.resolve("empty.onnx"), new byte[0]), "the file is empty");
    rejected(Protos.write(folder.resolve("text.onnx"), "hello, this is not protobuf\n".getBytes(java.nio.charset.StandardCharsets.UTF_8)));
    byte[] noise = new byte[4096];
    new Random(7).nextBytes(noise);
    rejected(Protos.write(folder.resolve("noise.onnx"), noise));
    rejected(file("nograph.onnx", Protos.model(chain().build()).toBuilder().clearGraph().build()), "has no graph");
    rejected(folder.resolve("absent.onnx"), "no such file");
    rejected(Files.createDirectories(folder.resolve("folder.onnx")), "not a regular file");
  }

  @Test
  void protobufFilesPast2GiBAreRejectedWithoutBeingRead() throws IOException {
    Path huge = folder.resolve("huge.onnx");
    try (var file = new java.io.RandomAccessFile(huge.toFile(), "rw")) {
      file.setLength((2L << 30) + 1); // sparse: no disk space used
    }
    rejected(huge, "cannot exceed 2 GiB", "external data");
  }

  @Test
  void randomCorruptionsNeverEscapeAsRawExceptions() {
    byte[] whole = Protos.model(chain().addInitializer(Protos.floatTensor("unused", new long[] {2}, 1f, 2f)).build()).toByteArray();
    Random random = new Random(42);
    for (int trial = 0; trial < 300; trial++) {
      byte[] corrupt = whole.clone();
      for (int flips = 1 + random.nextInt(3); flips > 0; flips--) {
        corrupt[random.nextInt(corrupt.length)] = (byte) random.nextInt(256);
      }
      Path file = Protos.write(folder.resolve("corrupt.onnx"), corrupt);
      try {
        ModelReader.read(file);
      } catch (KilnException.BadInput expected) {
        assertTrue(expected.getMessage().startsWith(file.toString()), expected.getMessage());
      }
    }
  }
}
