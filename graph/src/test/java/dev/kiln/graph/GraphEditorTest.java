package dev.kiln.graph;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;

import java.util.List;
import org.junit.jupiter.api.Test;

class GraphEditorTest {
  /** x -> Relu "relu" -> a -> If "if" { then: Neg "neg" (a) -> b } -> y (graph output, FLOAT [4]). */
  private final Graph graph = new Graph("main");
  private final Value x = graph.addInput("x", DataType.FLOAT, Shape.of(4));
  private final Node relu = Node.create(Onnx.RELU, "relu", List.of(x), "a");
  private final Node branch;

  GraphEditorTest() {
    graph.append(relu);
    Graph then = new Graph("then");
    then.addInitializer("body_in", Tensor.ofFloats(new long[] {1}, 0f));
    Node neg = Node.create(Onnx.NEG, "neg", List.of(relu.output()), "b");
    then.append(neg);
    then.addOutput(neg.output());
    branch = new Node(Onnx.IF, "if", List.of(x), List.of("y"));
    branch.setAttribute(Attribute.ofGraph("then_branch", then));
    graph.append(branch);
    branch.output().setType(DataType.FLOAT, Shape.of(4));
    graph.addOutput(branch.output());
  }

  @Test
  void freshNamesAvoidEveryNameInTheModelIncludingBodies() {
    GraphEditor editor = new GraphEditor(graph);
    assertEquals("c", editor.freshValueName("c"));
    assertEquals("c_1", editor.freshValueName("c"));
    assertEquals("b_1", editor.freshValueName("b"));
    assertEquals("body_in_1", editor.freshValueName("body_in"));
    assertEquals("neg_1", editor.freshNodeName("neg"));
    assertEquals("a", editor.freshNodeName("a"));
    assertEquals("relu_1", editor.freshNodeName("relu"));
  }

  @Test
  void theSuffixCounterGivesWhatAScanFromOneWouldGive() {
    graph.addInitializer("w_2", Tensor.ofFloats(new long[] {1}, 1f));
    GraphEditor editor = new GraphEditor(graph);
    List<String> names = List.of(editor.freshValueName("w"), editor.freshValueName("w"), editor.freshValueName("w"),
        editor.freshValueName("w_1"));
    assertEquals(List.of("w", "w_1", "w_3", "w_1_1"), names);
    for (int i = 0; i < 10_000; i++) {
      editor.freshValueName("many");
    }
    assertEquals("many_10000", editor.freshValueName("many"));
  }

  @Test
  void newNodesAreDetachedAndNamedLikeTheExporter() {
    GraphEditor editor = new GraphEditor(graph);
    Node split = editor.newNode(Onnx.SPLIT, "/block/Split", List.of(x), new boolean[] {true, false, true},
        Attribute.ofInt("axis", 0));
    assertNull(split.graph());
    assertEquals("/block/Split", split.name());
    assertEquals("/block/Split_output_0", split.output(0).name());
    assertNull(split.output(1));
    assertEquals("/block/Split_output_2", split.output(2).name());
    assertEquals(0, split.intAttribute("axis", -1));
    assertEquals(0, x.uses().stream().filter(use -> use.node() == split).count());
    editor.insertBefore(branch, split);
    assertSame(split, graph.nodes().get(1));
    Node second = editor.newNode(Onnx.SPLIT, "/block/Split", List.of(x), 1);
    assertEquals("/block/Split_1", second.name());
    assertEquals("/block/Split_1_output_0", second.output(0).name());
    Node shape = editor.newNode(Onnx.SHAPE, "relu", List.of(x), "a");
    assertEquals("relu_1", shape.name());
    assertEquals("a_1", shape.output().name());
    editor.insertBefore(null, shape);
    assertSame(shape, graph.nodes().get(graph.nodes().size() - 1));
    assertEquals("x_1", editor.addInitializer("x", Tensor.ofFloats(new long[] {1}, 2f)).name());
  }

  @Test
  void replacingAGraphOutputKeepsTheInterfaceNameAndType() {
    GraphEditor editor = new GraphEditor(graph);
    Node abs = editor.newNode(Onnx.ABS, "abs", List.of(x), 1);
    editor.insertBefore(null, abs);
    Value y = branch.output();
    editor.replaceKeepingInterface(y, abs.output());
    assertEquals("y", abs.output().name());
    assertEquals(DataType.FLOAT, abs.output().dataType());
    assertEquals(Shape.of(4), abs.output().shape());
    assertEquals("y_replaced", y.name());
    assertSame(abs.output(), graph.outputs().get(0));
    graph.remove(branch);
    assertEquals(List.of(), Verifier.check(graph));
  }

  @Test
  void replacingAnInnerValueRedirectsReadsInsideBodies() {
    GraphEditor editor = new GraphEditor(graph);
    Node abs = editor.newNode(Onnx.ABS, "abs", List.of(x), 1);
    editor.insertBefore(branch, abs);
    editor.replaceKeepingInterface(relu.output(), abs.output());
    assertEquals("a", relu.output().name());
    assertSame(abs.output(), branch.subgraphs().get(0).nodes().get(0).input(0));
    graph.remove(relu);
    assertEquals(List.of(), Verifier.check(graph));
  }
}
