package dev.kiln.graph;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import java.util.List;
import org.junit.jupiter.api.Test;

/** The printer's text is a contract (golden tests and `kiln inspect --graph` depend on it). */
class GraphPrinterTest {
  static Model sample() {
    Graph graph = new Graph("sample");
    Value x = graph.addInput("x", DataType.FLOAT, Shape.of(Shape.symbolic("batch"), Shape.known(3), Shape.UNKNOWN));
    Value flag = graph.addInput("flag", DataType.BOOL, Shape.SCALAR);
    Value scale = graph.addInitializer("scale", Tensor.ofFloats(new long[] {3, 1}, 0.5f, 1f, 2f));
    Value big = graph.addInitializer("big", Tensor.ofFloats(new long[] {20}, new float[20]));
    Node mul = Node.create(Onnx.MUL, "mul", List.of(x, scale), "scaled");
    graph.append(mul);
    Node norm = new Node(Microsoft.GROUP_NORM, "", java.util.Arrays.asList(mul.output(), big, null), List.of("normed", ""));
    norm.setAttribute(Attribute.ofInt("groups", 4));
    norm.setAttribute(Attribute.ofFloat("epsilon", 1e-5f));
    norm.setAttribute(Attribute.ofInts("axes", 1, -1));
    norm.setAttribute(Attribute.ofString("mode", "nhwc"));
    graph.append(norm);
    Graph thenBranch = new Graph("then");
    Node identity = Node.create(Onnx.IDENTITY, "", List.of(norm.output(0)), "kept");
    thenBranch.append(identity);
    thenBranch.addOutput(identity.output());
    Graph elseBranch = new Graph("else");
    elseBranch.addOutput(x);
    Node branch = new Node(Onnx.IF, "choose", List.of(flag), List.of("y"));
    branch.setAttribute(Attribute.ofGraph("then_branch", thenBranch));
    branch.setAttribute(Attribute.ofGraph("else_branch", elseBranch));
    graph.append(branch);
    branch.output().setType(DataType.FLOAT, null);
    graph.addOutput(branch.output());
    Model model = new Model(9, graph);
    model.opsetImports().put("", 17L);
    model.opsetImports().put("com.microsoft", 1L);
    model.setProducer("kiln", "0.1");
    return model;
  }

  @Test
  void printsTheStableTextForm() {
    String expected = """
        ir_version 9
        producer "kiln" "0.1"
        opset_import "":17 "com.microsoft":1
        graph "sample" {
          input %x: FLOAT['batch',3,?]
          input %flag: BOOL[]
          initializer %scale = FLOAT[3,1] [0.5,1.0,2.0]
          initializer %big = FLOAT[20] 80 bytes
          %scaled = Mul(%x, %scale)  # mul
          %normed, _ = com.microsoft:GroupNorm(%scaled, %big, _) {groups=4, epsilon=1.0E-5, axes=[1,-1], mode="nhwc"}
          %y: FLOAT = If(%flag)  # choose
            then_branch "then" {
              %kept = Identity(%normed)
              output %kept
            }
            else_branch "else" {
              output %x: FLOAT['batch',3,?]
            }
          output %y: FLOAT
        }
        """;
    assertEquals(expected, GraphPrinter.print(sample()));
    assertEquals(List.of(), Verifier.check(sample()));
  }

  @Test
  void detailedTextTellsDifferentContentApart() {
    Model one = sample();
    Model two = sample();
    assertEquals(GraphPrinter.printDetailed(one), GraphPrinter.printDetailed(two));
    two.graph().findValue("big").setInitializer(Tensor.ofFloats(new long[] {20}, ModelWriterTest.ramp(20)));
    assertEquals(GraphPrinter.print(one), GraphPrinter.print(two), "the plain form summarizes large tensors");
    assertNotEquals(GraphPrinter.printDetailed(one), GraphPrinter.printDetailed(two));
  }
}
