package dev.kiln.graph;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Use lists stay exact through every mutation; the verifier notices when they do not. */
class IrMutationTest {
  private Graph graph;
  private Value x;
  private Node relu;
  private Node neg;

  @BeforeEach
  void buildChain() {
    // x -> Relu -> a -> Neg -> y (graph output)
    graph = new Graph("chain");
    x = graph.addInput("x", DataType.FLOAT, Shape.of(Shape.symbolic("batch"), Shape.known(4)));
    relu = Node.create(Onnx.RELU, "relu", List.of(x), "a");
    graph.append(relu);
    neg = Node.create(Onnx.NEG, "neg", List.of(relu.output()), "y");
    graph.append(neg);
    graph.addOutput(neg.output());
  }

  @Test
  void usesAndProducersAreRecorded() {
    assertEquals(List.of(new Use(relu, 0)), x.uses());
    assertEquals(List.of(new Use(neg, 0)), relu.output().uses());
    assertSame(relu, relu.output().producer());
    assertEquals(0, relu.output().producerIndex());
    assertTrue(neg.output().isGraphOutput());
    assertNull(x.producer());
    assertEquals(List.of(), Verifier.check(graph));
  }

  @Test
  void replaceAllUsesWithMovesEveryUse() {
    Node abs = Node.create(Onnx.ABS, "abs", List.of(x), "b");
    graph.insertBefore(neg, abs);
    relu.output().replaceAllUsesWith(abs.output());
    assertSame(abs.output(), neg.input(0));
    assertFalse(relu.output().hasUses());
    assertEquals(List.of(new Use(neg, 0)), abs.output().uses());
    assertEquals(2, x.uses().size());
    graph.remove(relu);
    assertEquals(List.of(new Use(abs, 0)), x.uses());
    assertEquals(List.of(abs, neg), graph.nodes());
    assertEquals(List.of(), Verifier.check(graph));
  }

  @Test
  void removeRefusesANodeStillInUse() {
    IllegalStateException used = assertThrows(IllegalStateException.class, () -> graph.remove(relu));
    assertTrue(used.getMessage().contains("'a' is still used by Neg 'neg'"), used.getMessage());
    IllegalStateException output = assertThrows(IllegalStateException.class, () -> graph.remove(neg));
    assertTrue(output.getMessage().contains("a graph output"), output.getMessage());
    assertEquals(2, graph.nodes().size());
  }

  @Test
  void replacingAGraphOutputRetargetsTheOutput() {
    Node abs = Node.create(Onnx.ABS, "abs", List.of(neg.output()), "z");
    graph.insertAfter(neg, abs);
    neg.output().replaceAllUsesWith(abs.output());
    assertEquals(List.of(abs.output()), graph.outputs());
    assertFalse(neg.output().isGraphOutput());
    assertSame(neg.output(), abs.input(0), "the wrapping node keeps reading the value it wraps");
    assertEquals(List.of(), Verifier.check(graph));
  }

  @Test
  void setInputKeepsBothUseLists() {
    neg.setInput(0, x);
    assertEquals(List.of(new Use(relu, 0), new Use(neg, 0)), x.uses());
    assertFalse(relu.output().hasUses());
    neg.setInput(2, relu.output());
    assertEquals(3, neg.inputCount());
    assertNull(neg.input(1));
    assertEquals(List.of(new Use(neg, 2)), relu.output().uses());
    neg.truncateInputs(1);
    assertFalse(relu.output().hasUses());
    assertEquals(List.of(), Verifier.check(graph));
  }

  @Test
  void detachedNodesRegisterUsesOnlyWhenInserted() {
    Node detached = Node.create(Onnx.ABS, "abs", List.of(x), "b");
    assertEquals(1, x.uses().size());
    graph.insertAfter(relu, detached);
    assertEquals(2, x.uses().size());
    graph.remove(detached);
    assertEquals(1, x.uses().size());
  }

  @Test
  void initializersCanBeAddedAndRemovedWhenUnused() {
    Value weight = graph.addInitializer(graph.uniqueName("w"), Tensor.ofFloats(new long[] {4}, 1, 2, 3, 4));
    Node add = Node.create(Onnx.ADD, "add", List.of(relu.output(), weight), "c");
    graph.insertAfter(relu, add);
    assertEquals(DataType.FLOAT, weight.dataType(), "an initializer's type falls back to its tensor's");
    assertEquals(Shape.of(4), weight.shape());
    assertThrows(IllegalStateException.class, () -> graph.removeInitializer(weight));
    graph.remove(add);
    graph.removeInitializer(weight);
    assertEquals(List.of(), graph.initializers());
  }

  @Test
  void uniqueNamesAvoidEveryNameInTheModel() {
    assertEquals("fresh", graph.uniqueName("fresh"));
    assertEquals("a_1", graph.uniqueName("a"));
    assertEquals("relu_1", graph.uniqueNodeName("relu"));
  }

  @Test
  void subgraphCapturesAreUsesOfTheOuterValue() {
    Graph thenBranch = new Graph("then");
    Node inner = Node.create(Onnx.ABS, "inner", List.of(x), "t");
    thenBranch.append(inner);
    thenBranch.addOutput(inner.output());
    Graph elseBranch = new Graph("else");
    elseBranch.addOutput(x);
    Value condition = graph.addInput("condition", DataType.BOOL, Shape.SCALAR);
    Node branch = new Node(Onnx.IF, "if", List.of(condition), List.of("picked"));
    branch.setAttribute(Attribute.ofGraph("then_branch", thenBranch));
    branch.setAttribute(Attribute.ofGraph("else_branch", elseBranch));
    graph.insertAfter(relu, branch);
    assertSame(graph, thenBranch.parent());
    assertTrue(x.uses().contains(new Use(inner, 0)));
    assertEquals(1, x.outputOf.size(), "the else branch lists x as its output");
    assertEquals(List.of(), Verifier.check(graph));
    graph.remove(branch);
    assertEquals(List.of(new Use(relu, 0)), x.uses(), "removing the If drops its body's captures");
    assertEquals(0, x.outputOf.size());
    assertEquals(List.of(), Verifier.check(graph));
  }

  @Test
  void verifierReportsWhatIsBroken() {
    // Out of order: a node consuming 'a' placed before a's producer.
    Node early = Node.create(Onnx.ABS, "early", List.of(relu.output()), "e");
    graph.insertBefore(relu, early);
    assertTrue(String.join("\n", Verifier.check(graph)).contains("input 0 %a is not defined before it (produced later by Relu 'relu': not topological)"),
        String.join("\n", Verifier.check(graph)));
    graph.remove(early);

    // Name reuse.
    Node twin = Node.create(Onnx.ABS, "twin", List.of(x), "a");
    graph.append(twin);
    assertTrue(String.join("\n", Verifier.check(graph)).contains("value name 'a' is used by both"), String.join("\n", Verifier.check(graph)));
    graph.remove(twin);

    // A use list entry no node backs.
    Node ghost = Node.create(Onnx.NEG, "ghost", List.of(x), "g");
    x.addUse(ghost, 0);
    assertTrue(String.join("\n", Verifier.check(graph)).contains("dangling use by Neg 'ghost'"), String.join("\n", Verifier.check(graph)));
    x.removeUse(ghost, 0);

    // A graph output nothing produces.
    graph.addOutput(new Value("nowhere"));
    assertTrue(String.join("\n", Verifier.check(graph)).contains("output %nowhere is not produced"));
    assertThrows(dev.kiln.common.KilnException.ValidationFailed.class, () -> Verifier.verify(graph));
  }
}
