package dev.kiln.optimizer.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;

import dev.kiln.graph.Attribute;
import dev.kiln.graph.DataType;
import dev.kiln.graph.Graph;
import dev.kiln.graph.Model;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import dev.kiln.graph.Verifier;
import dev.kiln.graph.infer.ShapeInference;
import java.util.List;
import org.junit.jupiter.api.Test;

class MatcherTest {
  /** Sigmoid(Relu(x)) => HardSigmoid(x). */
  private static final Rule RELU_SIGMOID = TestRules.rule("relu-sigmoid",
      p -> p.op(Onnx.SIGMOID, p.op(Onnx.RELU, p.input("x"))), (m, b) -> b.op(Onnx.HARD_SIGMOID, m.value("x")));

  private final Graph graph = new Graph("g");
  private final Model model = new Model(8, graph);
  private final Value x = graph.addInput("x", DataType.FLOAT, Shape.of(2, 3));
  private final Value two = graph.addInitializer("two", Tensor.ofFloats(new long[0], 2f));

  MatcherTest() {
    model.opsetImports().put("", 17L);
  }

  private Node node(dev.kiln.graph.OpType type, Value... inputs) {
    Node node = Node.create(type, "/scope/" + type.name() + graph.nodes().size(), List.of(inputs), "v" + graph.nodes().size());
    graph.append(node);
    return node;
  }

  private Match match(Pattern pattern, Node root) {
    return Matcher.match(pattern, root, model, ShapeInference.of(model));
  }

  @Test
  void commutativeOperandsMatchEitherOrderAndBindNames() {
    PatternBuilder p = new PatternBuilder();
    Pattern pattern = p.op(Onnx.MUL, p.input("x"), p.scalar("factor", 2.0));
    Node swapped = node(Onnx.MUL, two, x);
    Match match = match(pattern, swapped);
    assertNotNull(match);
    assertSame(x, match.value("x"));
    assertEquals(2.0, match.scalar("factor"));
    Pattern ordered = p.op(Onnx.MUL, p.input("x"), p.scalar(2.0)).ordered();
    assertNull(match(ordered, swapped));
  }

  @Test
  void theSameNameMustBindTheSameValue() {
    PatternBuilder p = new PatternBuilder();
    Pattern square = p.op(Onnx.MUL, p.input("a"), p.input("a"));
    Node relu = node(Onnx.RELU, x);
    assertNotNull(match(square, node(Onnx.MUL, x, x)));
    assertNull(match(square, node(Onnx.MUL, x, relu.output())));
  }

  @Test
  void anyOfAndOptionalCast() {
    PatternBuilder p = new PatternBuilder();
    Pattern pattern = p.op(Onnx.SIGMOID, p.optionalCast(p.anyOf(p.op(Onnx.RELU, p.input("x")).as("relu"),
        p.op(Onnx.TANH, p.input("x")).as("tanh"))));
    Node tanh = node(Onnx.TANH, x);
    Node cast = node(Onnx.CAST, tanh.output());
    cast.setAttribute(Attribute.ofInt("to", DataType.FLOAT.number()));
    Match match = match(pattern, node(Onnx.SIGMOID, cast.output()));
    assertNotNull(match);
    assertSame(tanh, match.node("tanh"));
    assertEquals(3, match.nodes().size());
    assertNotNull(match(pattern, node(Onnx.SIGMOID, node(Onnx.RELU, x).output())));
  }

  @Test
  void constantsAreInitializersOrConstantNodesButNotGraphInputs() {
    PatternBuilder p = new PatternBuilder();
    Pattern pattern = p.op(Onnx.ADD, p.input("x"), p.constant("c"));
    assertNotNull(match(pattern, node(Onnx.ADD, x, two)));
    Value overridable = graph.addInput("bias", DataType.FLOAT, Shape.of(3));
    assertNull(match(pattern, node(Onnx.ADD, x, overridable)));
  }

  /** A rule whose interior value has an outside user is declined with that reason, and nothing changes. */
  @Test
  void driverDeclinesSitesWhoseIntermediateEscapesAndRewritesTheRest() {
    Node relu = node(Onnx.RELU, x);
    Node sigmoid = node(Onnx.SIGMOID, relu.output());
    Node tanh = node(Onnx.TANH, relu.output());
    graph.addOutput(sigmoid.output());
    graph.addOutput(tanh.output());
    DriverReport report = new RewriteDriver(List.of(RELU_SIGMOID), 4, Verifier::verify).run(model);
    assertEquals(0, report.applied("relu-sigmoid"));
    assertEquals(java.util.Map.of("intermediate Relu output has a user outside the pattern (Tanh)", 1),
        report.stats("relu-sigmoid").rejections());
    graph.removeOutput(1);
    graph.remove(tanh);
    DriverReport second = new RewriteDriver(List.of(RELU_SIGMOID), 4, Verifier::verify).run(model);
    assertEquals(1, second.applied("relu-sigmoid"));
    assertEquals(1, graph.nodes().size());
    assertEquals("/scope/HardSigmoid", graph.nodes().get(0).name(), "named after the site's scope");
    assertEquals("v1", graph.outputs().get(0).name(), "the graph output keeps its name");
    assertEquals(2, second.iterations(), "a second sweep confirms the fixpoint");
  }

  @Test
  void aCandidateThatDoesNotMatchNamesTheFurthestFailingEdge() {
    PatternBuilder p = new PatternBuilder();
    Pattern pattern = p.op(Onnx.SIGMOID, p.op(Onnx.RELU, p.op(Onnx.TANH, p.input("x"))));
    Node neg = node(Onnx.NEG, x);
    Node relu = node(Onnx.RELU, neg.output());
    Node sigmoid = node(Onnx.SIGMOID, relu.output());
    List<String> reasons = new java.util.ArrayList<>();
    assertNull(Matcher.match(pattern, sigmoid, model, ShapeInference.of(model), reasons::add));
    assertEquals(List.of("input 0 of Relu: expected Tanh, found Neg"), reasons);
    reasons.clear();
    assertNull(Matcher.match(pattern, relu, model, ShapeInference.of(model), reasons::add));
    assertEquals(List.of(), reasons, "a node the root op does not accept is no candidate");
    Pattern scaled = p.op(Onnx.MUL, p.input("x"), p.scalar(2.0));
    assertNull(Matcher.match(scaled, node(Onnx.MUL, x, x), model, ShapeInference.of(model), reasons::add));
    assertNull(Matcher.match(scaled, node(Onnx.MUL, x, node(Onnx.ADD, x, x).output()), model, ShapeInference.of(model),
        reasons::add));
    Value three = graph.addInitializer("three", Tensor.ofFloats(new long[0], 3f));
    assertNull(Matcher.match(scaled, node(Onnx.MUL, x, three), model, ShapeInference.of(model), reasons::add));
    assertEquals(List.of("input 1 of Mul: expected a constant, found a graph input",
        "input 1 of Mul: expected a constant, found Add",
        "input 1 of Mul: expected the constant 2.0, found another constant"), reasons);
  }

  @Test
  void theDriverListsNearMissesPerEdgeWithTheCandidatesNames() {
    Node first = node(Onnx.SIGMOID, node(Onnx.NEG, x).output());
    Node second = node(Onnx.SIGMOID, node(Onnx.NEG, x).output());
    Node third = node(Onnx.SIGMOID, x);
    graph.addOutput(first.output());
    graph.addOutput(second.output());
    graph.addOutput(third.output());
    DriverReport report = new RewriteDriver(List.of(RELU_SIGMOID), 4, Verifier::verify).run(model);
    assertEquals(0, report.applied("relu-sigmoid"));
    assertEquals(java.util.Map.of(), report.stats("relu-sigmoid").rejections());
    assertEquals(java.util.Map.of(
            "input 0 of Sigmoid: expected Relu, found Neg", List.of(first.name(), second.name()),
            "input 0 of Sigmoid: expected Relu, found a graph input", List.of(third.name())),
        report.stats("relu-sigmoid").nearMisses());
  }
}
