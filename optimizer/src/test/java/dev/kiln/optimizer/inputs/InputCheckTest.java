package dev.kiln.optimizer.inputs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.common.KilnException;
import dev.kiln.graph.ModelReader;
import dev.kiln.graph.proto.OnnxProto.AttributeProto;
import dev.kiln.graph.proto.OnnxProto.GraphProto;
import dev.kiln.graph.proto.OnnxProto.ModelProto;
import dev.kiln.graph.proto.OnnxProto.NodeProto;
import dev.kiln.graph.proto.OnnxProto.OperatorSetIdProto;
import dev.kiln.graph.proto.OnnxProto.TensorShapeProto;
import dev.kiln.graph.proto.OnnxProto.TypeProto;
import dev.kiln.graph.proto.OnnxProto.ValueInfoProto;
import dev.kiln.optimizer.OptimizationReport;
import dev.kiln.optimizer.Optimizer;
import dev.kiln.optimizer.profiles.Component;
import dev.kiln.optimizer.profiles.Target;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code kiln optimize} never accepts silently what it cannot check: each hostile model is refused with one
 * line naming the model, the node and what was expected, or optimized around with a warning naming what was
 * left alone.
 */
class InputCheckTest {
  /** The tiny graphs match no component's I/O names: name one, as --component does. */
  private static final Optimizer.Options OPTIONS = Optimizer.Options.of(Target.CPU).withComponent(Component.VAE_DECODER);

  @TempDir Path folder;

  private static ValueInfoProto tensor(String name) {
    TensorShapeProto shape = TensorShapeProto.newBuilder().addDim(TensorShapeProto.Dimension.newBuilder().setDimValue(1))
        .addDim(TensorShapeProto.Dimension.newBuilder().setDimValue(4)).build();
    return ValueInfoProto.newBuilder().setName(name)
        .setType(TypeProto.newBuilder().setTensorType(TypeProto.Tensor.newBuilder().setElemType(1).setShape(shape))).build();
  }

  private static NodeProto node(String name, String domain, String op, List<String> inputs, List<String> outputs, AttributeProto... attributes) {
    return NodeProto.newBuilder().setName(name).setDomain(domain).setOpType(op).addAllInput(inputs).addAllOutput(outputs)
        .addAllAttribute(List.of(attributes)).build();
  }

  /** x → Relu → Softmax → y, opset 17: a model every check accepts; each test breaks one thing. */
  private static ModelProto.Builder valid() {
    GraphProto graph = GraphProto.newBuilder().setName("g").addInput(tensor("x")).addOutput(tensor("y"))
        .addNode(node("relu", "", "Relu", List.of("x"), List.of("r")))
        .addNode(node("softmax", "", "Softmax", List.of("r"), List.of("y"),
            AttributeProto.newBuilder().setName("axis").setType(AttributeProto.AttributeType.INT).setI(-1).build()))
        .build();
    return ModelProto.newBuilder().setIrVersion(8).setProducerName("test")
        .addOpsetImport(OperatorSetIdProto.newBuilder().setDomain("").setVersion(17)).setGraph(graph);
  }

  private Path write(ModelProto.Builder model) throws Exception {
    Path file = folder.resolve("model.onnx");
    Files.write(file, model.build().toByteArray());
    return file;
  }

  private String refusal(ModelProto.Builder model) throws Exception {
    Path file = write(model);
    Path output = folder.resolve("out.onnx");
    KilnException refused = assertThrows(KilnException.class, () -> Optimizer.optimize(file, output, OPTIONS));
    assertEquals(2, refused.exitCode());
    assertFalse(Files.exists(output), "nothing written");
    assertFalse(refused.getMessage().contains("\n"), "one line: " + refused.getMessage());
    return refused.getMessage().substring(file.toString().length() + 2);
  }

  private static ModelProto.Builder withGraph(ModelProto.Builder model, UnaryOperator<GraphProto.Builder> change) {
    return model.setGraph(change.apply(model.getGraph().toBuilder()));
  }

  @Test
  void theValidModelIsAccepted() throws Exception {
    OptimizationReport report = Optimizer.optimize(write(valid()), folder.resolve("out.onnx"), OPTIONS);
    assertEquals(List.of(), report.warnings());
  }

  @Test
  void noOpsetImportIsRefused() throws Exception {
    assertEquals("the model imports no opset, so its operator versions are unknown (expected opset_import with the ai.onnx domain)",
        refusal(valid().clearOpsetImport()));
  }

  @Test
  void anOpsetNewerThanKilnKnowsIsRefused() throws Exception {
    assertEquals("ai.onnx opset 99 is newer than Kiln knows (up to 21); operators may have changed meaning, so it is not optimized",
        refusal(valid().clearOpsetImport().addOpsetImport(OperatorSetIdProto.newBuilder().setDomain("").setVersion(99))));
    assertEquals("com.microsoft opset 2 is newer than Kiln knows (up to 1)",
        refusal(valid().addOpsetImport(OperatorSetIdProto.newBuilder().setDomain("com.microsoft").setVersion(2))));
  }

  @Test
  void anInputWithoutTypeIsRefused() throws Exception {
    ModelProto.Builder model = withGraph(valid(), graph -> graph.setInput(0, ValueInfoProto.newBuilder().setName("x")));
    assertEquals("graph input 'x' has no type (expected a tensor element type, as every exporter writes)", refusal(model));
  }

  @Test
  void aNodeInADomainTheModelDoesNotImportIsRefused() throws Exception {
    ModelProto.Builder model = withGraph(valid(), graph -> graph.setNode(0, node("custom\u001b[31m", "my.ops", "Frobnicate",
        List.of("x"), List.of("r"))));
    assertEquals("node 'custom\\x1b[31m' ('my.ops:Frobnicate') is in domain 'my.ops', which the model does not import "
        + "(expected an opset_import entry for it)", refusal(model));
  }

  @Test
  void nodesInAnUnknownDomainPassThroughWithAWarningThatNamesThem() throws Exception {
    ModelProto.Builder model = withGraph(valid(), graph -> graph.setNode(0, node("custom", "my.ops", "Frobnicate", List.of("x"),
        List.of("r")))).addOpsetImport(OperatorSetIdProto.newBuilder().setDomain("my.ops").setVersion(1));
    Path file = write(model);
    Path output = folder.resolve("out.onnx");
    OptimizationReport report = Optimizer.optimize(file, output, OPTIONS);
    assertEquals(List.of(file + ": 1 node in domain 'my.ops' ('Frobnicate') passed through unchanged: Kiln has no schema for "
        + "them, so no rule rewrites them and their output shapes are not inferred"), report.warnings());
    assertEquals(1, ModelReader.read(output).graph().nodes().stream().filter(node -> node.opType().domain().equals("my.ops")).count());

    ModelProto.Builder unknownOp = withGraph(valid(), graph -> graph.setNode(0, node("mystery", "", "NoSuchOperator", List.of("x"),
        List.of("r"))));
    assertEquals(List.of(write(unknownOp) + ": 1 node of ai.onnx operators Kiln does not know ('NoSuchOperator') passed through "
        + "unchanged: Kiln has no schema for them, so no rule rewrites them and their output shapes are not inferred"),
        Optimizer.optimize(write(unknownOp), output, OPTIONS).warnings());
  }

  @Test
  void attributesOfTheWrongKindAreRefused() throws Exception {
    AttributeProto axisAsText = AttributeProto.newBuilder().setName("axis").setType(AttributeProto.AttributeType.STRING)
        .setS(com.google.protobuf.ByteString.copyFromUtf8("-1")).build();
    ModelProto.Builder model = withGraph(valid(), graph -> graph.setNode(1, node("softmax", "", "Softmax", List.of("r"), List.of("y"),
        axisAsText)));
    assertEquals("node 'softmax' (Softmax) attribute 'axis' is STRING; expected INT", refusal(model));
  }

  @Test
  void theWrongNumberOfInputsOrOutputsIsRefused() throws Exception {
    ModelProto.Builder threeInputs = withGraph(valid(), graph -> graph.setNode(0, node("add", "", "Add", List.of("x", "x", "x"),
        List.of("r"))));
    assertEquals("node 'add' (Add) has 3 inputs; expected 2", refusal(threeInputs));
    ModelProto.Builder twoOutputs = withGraph(valid(), graph -> graph.setNode(0, node("relu", "", "Relu", List.of("x"),
        List.of("r", "extra"))));
    assertEquals("node 'relu' (Relu) has 2 outputs; expected 1", refusal(twoOutputs));
    ModelProto.Builder noInput = withGraph(valid(), graph -> graph.setNode(0, node("where", "", "Where", List.of("x", "", "x"),
        List.of("r"))));
    assertEquals("node 'where' (Where) leaves out required input 1", refusal(noInput));
  }

  @Test
  void everyCommittedFixtureAndPipelinePassesWithoutWarnings() throws Exception {
    Path root = Path.of(System.getProperty("kiln.root", ".."));
    try (var walk = Files.walk(root.resolve("testdata/fixtures"))) {
      for (Path model : (Iterable<Path>) walk.filter(path -> path.getFileName().toString().equals("model.onnx"))::iterator) {
        assertEquals(List.of(), InputCheck.check(ModelReader.read(model), model.toString()), model.toString());
      }
    }
    for (String component : List.of("text_encoder", "unet", "vae_decoder", "vae_encoder")) {
      Path model = root.resolve("testdata/pipelines/tiny-sd").resolve(component).resolve("model.onnx");
      assertTrue(InputCheck.check(ModelReader.read(model), model.toString()).isEmpty(), model.toString());
    }
  }
}
