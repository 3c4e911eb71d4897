package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.graph.proto.OnnxProto.GraphProto;
import dev.kiln.graph.proto.OnnxProto.ModelProto;
import dev.kiln.graph.proto.OnnxProto.NodeProto;
import dev.kiln.graph.proto.OnnxProto.OperatorSetIdProto;
import dev.kiln.graph.proto.OnnxProto.TypeProto;
import dev.kiln.graph.proto.OnnxProto.ValueInfoProto;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code kiln optimize} on a model it cannot fully check: a warning line and exit 0, or one line and exit 2. */
class OptimizeInputChecksCommandTest {
  @TempDir Path folder;

  private Path model(String domain, String op, int inputs) throws Exception {
    ValueInfoProto x = ValueInfoProto.newBuilder().setName("x")
        .setType(TypeProto.newBuilder().setTensorType(TypeProto.Tensor.newBuilder().setElemType(1))).build();
    NodeProto.Builder node = NodeProto.newBuilder().setName("n0").setDomain(domain).setOpType(op).addOutput("y");
    for (int index = 0; index < inputs; index++) {
      node.addInput("x");
    }
    ModelProto.Builder model = ModelProto.newBuilder().setIrVersion(8)
        .addOpsetImport(OperatorSetIdProto.newBuilder().setDomain("").setVersion(17))
        .setGraph(GraphProto.newBuilder().setName("g").addInput(x).addOutput(x.toBuilder().setName("y")).addNode(node));
    if (!domain.isEmpty()) {
      model.addOpsetImport(OperatorSetIdProto.newBuilder().setDomain(domain).setVersion(1));
    }
    Path file = folder.resolve(op + ".onnx");
    Files.write(file, model.build().toByteArray());
    return file;
  }

  @Test
  void aCustomDomainIsOptimizedAroundWithAWarningLine() throws Exception {
    Path input = model("vendor.ops", "Magic", 1);
    Path output = folder.resolve("out.onnx");
    var run = InspectCommandTest.run("optimize", input.toString(), "-o", output.toString(), "--target", "cpu", "--component", "unet",
        "--json");
    assertEquals(0, run.exitCode(), run.err());
    assertEquals("kiln: warning: " + input + ": 1 node in domain 'vendor.ops' ('Magic') passed through unchanged: Kiln has no "
        + "schema for them, so no rule rewrites them and their output shapes are not inferred", run.err().strip());
    assertTrue(run.out().contains("\"warnings\" : [ \"" + input + ": 1 node in domain 'vendor.ops'"), run.out());
    assertTrue(Files.isRegularFile(output));
  }

  @Test
  void wrongArityExitsTwoWithOneLine() throws Exception {
    Path input = model("", "Sigmoid", 2);
    var run = InspectCommandTest.run("optimize", input.toString(), "-o", folder.resolve("out.onnx").toString(), "--target", "cpu",
        "--component", "unet");
    assertEquals(2, run.exitCode());
    assertEquals("kiln: " + input + ": node 'n0' (Sigmoid) has 2 inputs; expected 1", run.err().strip());
    assertFalse(Files.exists(folder.resolve("out.onnx")));
  }
}
