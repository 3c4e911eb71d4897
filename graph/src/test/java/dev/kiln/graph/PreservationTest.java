package dev.kiln.graph;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import com.google.protobuf.UnknownFieldSet;
import dev.kiln.graph.proto.OnnxProto.AttributeProto;
import dev.kiln.graph.proto.OnnxProto.DeviceConfigurationProto;
import dev.kiln.graph.proto.OnnxProto.FunctionProto;
import dev.kiln.graph.proto.OnnxProto.GraphProto;
import dev.kiln.graph.proto.OnnxProto.ModelProto;
import dev.kiln.graph.proto.OnnxProto.NodeProto;
import dev.kiln.graph.proto.OnnxProto.OperatorSetIdProto;
import dev.kiln.graph.proto.OnnxProto.SparseTensorProto;
import dev.kiln.graph.proto.OnnxProto.StringStringEntryProto;
import dev.kiln.graph.proto.OnnxProto.TensorAnnotation;
import dev.kiln.graph.proto.OnnxProto.TensorProto;
import dev.kiln.graph.proto.OnnxProto.TrainingInfoProto;
import dev.kiln.graph.proto.OnnxProto.TypeProto;
import dev.kiln.graph.proto.OnnxProto.ValueInfoProto;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Everything a file carries survives read → write byte-identically: unknown fields at every level, doc strings,
 * metadata (model, graph, node, value, tensor), IR 10/11 fields, functions, training info, sparse initializers,
 * quantization annotations, device configuration, If bodies, FLOAT8/INT4 tensors, the "ai.onnx" spelling.
 * After an edit, the untouched parts keep all of that.
 */
class PreservationTest {
  @TempDir Path folder;

  private static UnknownFieldSet unknown(int seed) {
    return UnknownFieldSet.newBuilder()
        .addField(900 + seed, UnknownFieldSet.Field.newBuilder().addVarint(seed * 7L).build())
        .addField(950 + seed, UnknownFieldSet.Field.newBuilder().addLengthDelimited(ByteString.copyFromUtf8("future-" + seed)).build())
        .build();
  }

  private static StringStringEntryProto entry(String key, String value) {
    return StringStringEntryProto.newBuilder().setKey(key).setValue(value).build();
  }

  static ModelProto everything() {
    TensorProto weight = Protos.floatTensor("w", new long[] {2}, 1.5f, -3f).toBuilder()
        .setDocString("a weight").addMetadataProps(entry("origin", "conv1")).setUnknownFields(unknown(1)).build();
    TensorProto float8 = TensorProto.newBuilder().setName("f8").setDataType(DataType.FLOAT8E4M3FN.number()).addDims(3)
        .setRawData(ByteString.copyFrom(new byte[] {0x38, (byte) 0xb8, 0x40})).build();
    TensorProto int4 = TensorProto.newBuilder().setName("i4").setDataType(DataType.INT4.number()).addDims(3)
        .addInt32Data(0x9f).addInt32Data(0x07).build();
    SparseTensorProto sparse = SparseTensorProto.newBuilder()
        .setValues(Protos.floatTensor("sparse_w", new long[] {2}, 4f, 5f))
        .setIndices(TensorProto.newBuilder().setDataType(7).addDims(2).addInt64Data(0).addInt64Data(3))
        .addDims(4)
        .build();
    GraphProto thenBranch = GraphProto.newBuilder()
        .setName("then")
        .addNode(NodeProto.newBuilder().setOpType("Identity").addInput("a").addOutput("t").setUnknownFields(unknown(2)))
        .addOutput(ValueInfoProto.newBuilder().setName("t").setUnknownFields(unknown(3)))
        .build();
    GraphProto elseBranch = GraphProto.newBuilder().setName("else").addOutput(ValueInfoProto.newBuilder().setName("x")).build();
    NodeProto add = NodeProto.newBuilder()
        .setName("add").setOpType("Add").setDomain("ai.onnx").addInput("x").addInput("w").addOutput("a")
        .setDocString("adds").addMetadataProps(entry("line", "12")).setOverload("")
        .addAttribute(AttributeProto.newBuilder().setName("legacy").setI(3).setUnknownFields(unknown(4))) // IR 1: no type field
        .setUnknownFields(unknown(5))
        .build();
    NodeProto branch = NodeProto.newBuilder()
        .setName("if").setOpType("If").addInput("flag").addOutput("y")
        .addAttribute(AttributeProto.newBuilder().setName("then_branch").setType(AttributeProto.AttributeType.GRAPH).setG(thenBranch))
        .addAttribute(AttributeProto.newBuilder().setName("else_branch").setType(AttributeProto.AttributeType.GRAPH).setG(elseBranch))
        .build();
    NodeProto custom = NodeProto.newBuilder()
        .setOpType("Scaled").setDomain("kiln.test").addInput("y").addInput("f8").addInput("i4").addInput("sparse_w").addOutput("z")
        .addAttribute(AttributeProto.newBuilder().setName("kind").setType(AttributeProto.AttributeType.TYPE_PROTO)
            .setTp(TypeProto.newBuilder().setSequenceType(TypeProto.Sequence.newBuilder().setElemType(
                TypeProto.newBuilder().setTensorType(TypeProto.Tensor.newBuilder().setElemType(1))))))
        .build();
    GraphProto graph = GraphProto.newBuilder()
        .setName("main").setDocString("the main graph").addMetadataProps(entry("stage", "unet"))
        .addInput(Protos.floatInfo("x", 2).toBuilder().setDocString("input x").addMetadataProps(entry("unit", "px")).setUnknownFields(unknown(6)))
        .addInput(ValueInfoProto.newBuilder().setName("flag")
            .setType(TypeProto.newBuilder().setTensorType(TypeProto.Tensor.newBuilder().setElemType(9).setShape(
                dev.kiln.graph.proto.OnnxProto.TensorShapeProto.newBuilder().addDim(
                    dev.kiln.graph.proto.OnnxProto.TensorShapeProto.Dimension.newBuilder().setDimParam("one").setDenotation("DATA_BATCH")))))
            .build())
        .addInitializer(weight).addInitializer(float8).addInitializer(int4)
        .addSparseInitializer(sparse)
        .addNode(add).addNode(branch).addNode(custom)
        .addOutput(Protos.floatInfo("z", 2))
        .addValueInfo(Protos.floatInfo("a", 2).toBuilder().setDocString("intermediate"))
        .addValueInfo(Protos.floatInfo("not_in_graph", 1))
        .addQuantizationAnnotation(TensorAnnotation.newBuilder().setTensorName("w").addQuantParameterTensorNames(entry("SCALE_TENSOR", "s")))
        .setUnknownFields(unknown(7))
        .build();
    return ModelProto.newBuilder()
        .setIrVersion(11)
        .setProducerName("kiln-test").setProducerVersion("").setDomain("dev.kiln").setModelVersion(3).setDocString("everything")
        .addOpsetImport(OperatorSetIdProto.newBuilder().setDomain("ai.onnx").setVersion(21))
        .addOpsetImport(OperatorSetIdProto.newBuilder().setDomain("kiln.test").setVersion(1))
        .addMetadataProps(entry("license", "none")).addMetadataProps(entry("license", "duplicate keys survive too"))
        .setGraph(graph)
        .addTrainingInfo(TrainingInfoProto.newBuilder().setAlgorithm(GraphProto.newBuilder().setName("step")).addUpdateBinding(entry("w", "w_new")))
        .addFunctions(FunctionProto.newBuilder().setName("Scaled").setDomain("kiln.test").addInput("a").addOutput("b")
            .addNode(NodeProto.newBuilder().setOpType("Identity").addInput("a").addOutput("b"))
            .addOpsetImport(OperatorSetIdProto.newBuilder().setDomain("").setVersion(21)))
        .addConfiguration(DeviceConfigurationProto.newBuilder().setName("pair").setNumDevices(2))
        .setUnknownFields(unknown(8))
        .build();
  }

  @Test
  void everythingSurvivesAnUntouchedRoundTripByteForByte() throws Exception {
    byte[] original = everything().toByteArray();
    Path file = Protos.write(folder.resolve("everything.onnx"), original);
    Model model = ModelReader.read(file);
    assertEquals(List.of(), Verifier.check(model));
    Path rewritten = folder.resolve("rewritten.onnx");
    ModelWriter.write(model, rewritten);
    assertArrayEquals(original, Files.readAllBytes(rewritten));
    assertEquals(21, model.opsetVersion(""), "'ai.onnx' is the default domain");
    assertEquals(DataType.FLOAT8E4M3FN, model.graph().findValue("f8").dataType());
    assertArrayEquals(new long[] {-1, -7, 7}, model.graph().findValue("i4").initializer().longs());
    assertEquals(Shape.of(Shape.symbolic("one")), model.graph().findValue("flag").shape());
    assertEquals(Attribute.Kind.INT, model.graph().findNode("add").attribute("legacy").kind());
  }

  @Test
  void untouchedPartsKeepEverythingAfterAnEdit() throws Exception {
    Path file = Protos.write(folder.resolve("everything.onnx"), everything().toByteArray());
    Model model = ModelReader.read(file);
    Graph graph = model.graph();
    // Insert Relu after Add and make If read it: the node list, one input and one value change.
    Node add = graph.findNode("add");
    Node relu = Node.create(Onnx.RELU, "relu", List.of(add.output()), graph.uniqueName("a_relu"));
    graph.insertAfter(add, relu);
    Node branchNode = graph.findNode("if");
    Node inner = branchNode.attribute("then_branch").asGraph().nodes().get(0);
    inner.setInput(0, relu.output());
    model.metadata().put("edited", "yes");
    Path rewritten = folder.resolve("edited.onnx");
    ModelWriter.write(model, rewritten);

    ModelProto before = everything();
    ModelProto after = ModelReader.readProto(rewritten);
    assertEquals(before.getUnknownFields(), after.getUnknownFields());
    assertEquals(before.getTrainingInfoList(), after.getTrainingInfoList());
    assertEquals(before.getFunctionsList(), after.getFunctionsList());
    assertEquals(before.getConfigurationList(), after.getConfigurationList());
    assertEquals(before.getOpsetImportList(), after.getOpsetImportList(), "the 'ai.onnx' spelling stays");
    assertEquals(2, after.getMetadataPropsCount(), "duplicate keys are kept only while metadata is untouched; edited, the map rules");
    GraphProto graphBefore = before.getGraph();
    GraphProto graphAfter = after.getGraph();
    assertEquals(graphBefore.getUnknownFields(), graphAfter.getUnknownFields());
    assertEquals(graphBefore.getQuantizationAnnotationList(), graphAfter.getQuantizationAnnotationList());
    assertEquals(graphBefore.getSparseInitializerList(), graphAfter.getSparseInitializerList());
    assertEquals(graphBefore.getInitializerList(), graphAfter.getInitializerList());
    assertEquals(graphBefore.getInputList(), graphAfter.getInputList());
    assertEquals(graphBefore.getValueInfoList(), graphAfter.getValueInfoList(), "value_info, including one naming no value, is kept");
    assertEquals(graphBefore.getNode(0), graphAfter.getNode(0), "the Add node with its IR-1 attribute and unknown fields");
    assertEquals("Relu", graphAfter.getNode(1).getOpType());
    NodeProto innerAfter = graphAfter.getNode(2).getAttribute(0).getG().getNode(0);
    assertEquals("a_relu", innerAfter.getInput(0));
    assertEquals(graphBefore.getNode(1).getAttribute(0).getG().getNode(0).getUnknownFields(), innerAfter.getUnknownFields());
    assertFalse(after.getMetadataPropsList().stream().noneMatch(entry -> entry.getKey().equals("edited")));
    assertTrue(Verifier.check(ModelReader.read(rewritten)).isEmpty());
  }
}
