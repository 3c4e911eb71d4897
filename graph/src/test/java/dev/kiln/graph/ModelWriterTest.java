package dev.kiln.graph;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.common.KilnException;
import dev.kiln.graph.proto.OnnxProto.StringStringEntryProto;
import dev.kiln.graph.proto.OnnxProto.TensorProto;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Layout (inline, threshold, one aligned data file), determinism and atomic replacement of what the writer emits. */
class ModelWriterTest {
  @TempDir Path folder;

  /** x -> Add(w_small) -> Mul(w_medium) -> Add(w_large) -> y with 8, 5000 and 10000-byte weights. */
  static Model threeWeights() {
    Graph graph = new Graph("weights");
    Value x = graph.addInput("x", DataType.FLOAT, Shape.of(Shape.symbolic("n")));
    Value small = graph.addInitializer("w_small", Tensor.ofFloats(new long[] {2}, 1.5f, -2.5f));
    Value medium = graph.addInitializer("w_medium", Tensor.ofFloats(new long[] {1250}, ramp(1250)));
    Value large = graph.addInitializer("w_large", Tensor.ofFloats(new long[] {2500}, ramp(2500)));
    Node first = Node.create(Onnx.ADD, "first", List.of(x, small), "a");
    Node second = Node.create(Onnx.MUL, "second", List.of(first.output(), medium), "b");
    Node third = Node.create(Onnx.ADD, "third", List.of(second.output(), large), "y");
    graph.append(first);
    graph.append(second);
    graph.append(third);
    graph.addOutput(third.output());
    Model model = new Model(8, graph);
    model.opsetImports().put("", 17L);
    model.setProducer("kiln-test", "1");
    return model;
  }

  static float[] ramp(int count) {
    float[] values = new float[count];
    for (int i = 0; i < count; i++) {
      values[i] = i * 0.25f - 7;
    }
    return values;
  }

  private static Map<String, String> externalData(TensorProto tensor) {
    return tensor.getExternalDataList().stream().collect(Collectors.toMap(StringStringEntryProto::getKey, StringStringEntryProto::getValue));
  }

  @Test
  void tensorsAboveTheThresholdGoToOneAlignedDataFile() throws IOException {
    Path target = folder.resolve("model.onnx");
    ModelWriter.write(threeWeights(), target, WriteOptions.externalAbove(4096));
    var proto = ModelReader.readProto(target);
    List<TensorProto> initializers = proto.getGraph().getInitializerList();
    assertTrue(initializers.get(0).hasRawData());
    assertEquals(Map.of("location", "model.onnx.data", "offset", "0", "length", "5000"), externalData(initializers.get(1)));
    assertEquals(Map.of("location", "model.onnx.data", "offset", "8192", "length", "10000"), externalData(initializers.get(2)));
    assertEquals(8192 + 10000, Files.size(folder.resolve("model.onnx.data")));

    Model back = ModelReader.read(target);
    ExternalTensor large = assertInstanceOf(ExternalTensor.class, back.graph().initializers().get(2).initializer());
    assertEquals(8192, large.offset());
    assertArrayEquals(ramp(2500), large.floats());
    assertArrayEquals(ramp(1250), back.graph().initializers().get(1).initializer().floats());
    assertEquals(GraphPrinter.printDetailed(threeWeights()), GraphPrinter.printDetailed(back));
    try (var files = Files.list(folder)) {
      assertEquals(List.of("model.onnx", "model.onnx.data"), files.map(path -> path.getFileName().toString()).sorted().toList(),
          "no temporary files are left behind");
    }
  }

  @Test
  void alignmentAndDataFileNameAreOptions() {
    Path target = folder.resolve("m.onnx");
    ModelWriter.write(threeWeights(), target, WriteOptions.externalAbove(0).withAlignment(64).withDataFileName("weights.bin"));
    List<TensorProto> initializers = ModelReader.readProto(target).getGraph().getInitializerList();
    assertEquals(List.of("0", "64", "5120"), initializers.stream().map(tensor -> externalData(tensor).get("offset")).toList());
    assertEquals("weights.bin", externalData(initializers.get(0)).get("location"));
    assertThrows(IllegalArgumentException.class, () -> WriteOptions.externalAbove(0).withDataFileName("../up.bin"));
    assertThrows(IllegalArgumentException.class, () -> WriteOptions.externalAbove(0).withAlignment(48));
  }

  @Test
  void theSameModelAlwaysGivesTheSameBytes() throws IOException {
    Path one = folder.resolve("one/model.onnx");
    Path two = folder.resolve("two/model.onnx");
    ModelWriter.write(threeWeights(), one, WriteOptions.externalAbove(1000));
    ModelWriter.write(ModelReader.read(one), two, WriteOptions.externalAbove(1000));
    assertArrayEquals(Files.readAllBytes(one), Files.readAllBytes(two));
    assertArrayEquals(Files.readAllBytes(folder.resolve("one/model.onnx.data")), Files.readAllBytes(folder.resolve("two/model.onnx.data")));
  }

  @Test
  void externalModelsCanBeInlinedAndKeepTheirLayoutOtherwise() throws IOException {
    Path external = folder.resolve("external/model.onnx");
    ModelWriter.write(threeWeights(), external, WriteOptions.externalAbove(4096));
    Model model = ModelReader.read(external);

    Path kept = folder.resolve("kept/model.onnx");
    ModelWriter.write(model, kept);
    assertEquals(2, ModelReader.readProto(kept).getGraph().getInitializerList().stream().filter(TensorProto::hasDataLocation).count());

    Path inline = folder.resolve("inline/model.onnx");
    ModelWriter.write(model, inline, WriteOptions.allInline());
    assertFalse(Files.exists(folder.resolve("inline/model.onnx.data")));
    Model back = ModelReader.read(inline);
    assertTrue(back.graph().initializers().stream().allMatch(value -> value.initializer() instanceof InlineTensor));
    assertEquals(GraphPrinter.printDetailed(model), GraphPrinter.printDetailed(back));
  }

  @Test
  void overwritingTheSourceDataFileKeepsTheModelInMemoryValid() {
    Path target = folder.resolve("model.onnx");
    ModelWriter.write(threeWeights(), target, WriteOptions.externalAbove(4096));
    Model model = ModelReader.read(target);
    // Drop the medium weight so the large one moves to offset 0 of the rewritten file.
    Node second = model.graph().findNode("second");
    second.output().replaceAllUsesWith(second.input(0));
    model.graph().remove(second);
    model.graph().removeInitializer(model.graph().findValue("w_medium"));
    ModelWriter.write(model, target, WriteOptions.externalAbove(4096));
    ExternalTensor moved = assertInstanceOf(ExternalTensor.class, model.graph().findValue("w_large").initializer());
    assertEquals(0, moved.offset());
    assertArrayEquals(ramp(2500), moved.floats());
    assertArrayEquals(ramp(2500), ModelReader.read(target).graph().findValue("w_large").initializer().floats());
  }

  @Test
  void allInlinePast2GiBIsRefusedBeforeAnyDataIsTouched() {
    Graph graph = new Graph("huge");
    Value weight = graph.addInitializer("huge", Tensor.computed(DataType.FLOAT, new long[] {600_000_000L}, () -> {
      throw new AssertionError("the writer must refuse before producing the bytes");
    }));
    graph.addOutput(weight);
    Model model = new Model(8, graph);
    KilnException.Unsupported error =
        assertThrows(KilnException.Unsupported.class, () -> ModelWriter.write(model, folder.resolve("huge.onnx"), WriteOptions.allInline()));
    assertTrue(error.getMessage().contains("2 GiB"), error.getMessage());
    assertFalse(Files.exists(folder.resolve("huge.onnx")));
  }

  @Test
  void computedTensorsGoExternalFromTheThresholdUnderKeepLayout() {
    Model model = threeWeights();
    Value medium = model.graph().findValue("w_medium");
    medium.setInitializer(Tensor.ofFloat16(new long[] {1250}, ramp(1250)));
    Value large = model.graph().findValue("w_large");
    large.setInitializer(Tensor.ofFloats(new long[] {2500}, ramp(2500)));
    WriteOptions options = new WriteOptions(WriteOptions.Mode.KEEP_LAYOUT, 4096, null, 4096);
    Path target = folder.resolve("model.onnx");
    ModelWriter.write(model, target, options);
    List<TensorProto> initializers = ModelReader.readProto(target).getGraph().getInitializerList();
    assertEquals(List.of(false, false, true), initializers.stream().map(TensorProto::hasDataLocation).toList());
    assertArrayEquals(ramp(1250), ModelReader.read(target).graph().findValue("w_medium").initializer().floats(), "ramp values are exact in fp16");
  }

  @Test
  void aFailureWhileStreamingLeavesThePreviousModelAndDataUntouched() throws IOException {
    Path target = folder.resolve("model.onnx");
    ModelWriter.write(threeWeights(), target, WriteOptions.externalAbove(4096));
    byte[] modelBefore = Files.readAllBytes(target);
    byte[] dataBefore = Files.readAllBytes(folder.resolve("model.onnx.data"));
    Model broken = threeWeights();
    broken.graph().findValue("w_large").setInitializer(Tensor.computed(DataType.FLOAT, new long[] {2500}, () -> {
      throw new IllegalStateException("source vanished");
    }));
    assertThrows(IllegalStateException.class, () -> ModelWriter.write(broken, target, WriteOptions.externalAbove(4096)));
    assertArrayEquals(modelBefore, Files.readAllBytes(target));
    assertArrayEquals(dataBefore, Files.readAllBytes(folder.resolve("model.onnx.data")));
    try (var files = Files.list(folder)) {
      assertEquals(List.of("model.onnx", "model.onnx.data"), files.map(path -> path.getFileName().toString()).sorted().toList(),
          "temporary files are removed");
    }
  }

  @Test
  void standaloneTensorsRoundTrip() {
    Tensor tensor = Tensor.ofLongs(new long[] {3}, 1, -2, 3);
    Path file = Protos.write(folder.resolve("t.pb"), ModelWriter.tensorBytes(tensor, "t"));
    Tensor back = ModelReader.readTensor(file);
    assertArrayEquals(new long[] {1, -2, 3}, back.longs());
    assertArrayEquals(new int[] {1, -2, 3}, back.ints());
  }
}
