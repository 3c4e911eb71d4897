package dev.kiln.optimizer.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;

import dev.kiln.graph.Attribute;
import dev.kiln.graph.DataType;
import dev.kiln.graph.Graph;
import dev.kiln.graph.Model;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Value;
import dev.kiln.graph.Verifier;
import dev.kiln.optimizer.cleanups.IdentityElimination;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The driver's splice on graphs whose replaced values are also read inside If/Loop bodies. */
class RewriteDriverTest {
  private static final Shape SHAPE = Shape.of(2, 3);

  /** x -> Relu -> Identity -> a; If(cond) { then: Sigmoid(a), else: Neg(a) } -> y; a is read only inside the bodies. */
  private static Model modelWithBodiesReading(boolean alsoReadOutside) {
    Graph graph = new Graph("main");
    Model model = new Model(8, graph);
    model.opsetImports().put("", 17L);
    Value x = graph.addInput("x", DataType.FLOAT, SHAPE);
    Value condition = graph.addInput("cond", DataType.BOOL, Shape.of(new long[0]));
    Node relu = Node.create(Onnx.RELU, "/Relu", List.of(x), "relu");
    graph.append(relu);
    Node identity = Node.create(Onnx.IDENTITY, "/Identity", List.of(relu.output()), "a");
    graph.append(identity);
    Value a = identity.output();
    Node branch = new Node(Onnx.IF, "/If", List.of(condition), List.of("y"));
    branch.setAttribute(Attribute.ofGraph("then_branch", body("then", Onnx.SIGMOID, a)));
    branch.setAttribute(Attribute.ofGraph("else_branch", body("else", Onnx.NEG, a)));
    graph.append(branch);
    branch.output().setType(DataType.FLOAT, SHAPE);
    graph.addOutput(branch.output());
    Verifier.verify(graph);
    if (alsoReadOutside) {
      Node tanh = Node.create(Onnx.TANH, "/Tanh", List.of(a), "z");
      graph.append(tanh);
      tanh.output().setType(DataType.FLOAT, SHAPE);
      graph.addOutput(tanh.output());
    }
    return model;
  }

  private static Graph body(String name, dev.kiln.graph.OpType type, Value captured) {
    Graph body = new Graph(name);
    Node node = Node.create(type, "/" + name + "/" + type.name(), List.of(captured), name + "_out");
    body.append(node);
    node.output().setType(DataType.FLOAT, SHAPE);
    body.addOutput(node.output());
    return body;
  }

  /** Exp(Relu output) appended after the If and listed as an output: a value produced after the bodies' reads. */
  private static Value appendLateOutput(Graph graph) {
    Node late = Node.create(Onnx.EXP, "/Exp", List.of(graph.findNode("/Relu").output()), "late");
    graph.append(late);
    late.output().setType(DataType.FLOAT, SHAPE);
    graph.addOutput(late.output());
    return late.output();
  }

  private static Value bodyInput(Model model, int branchIndex) {
    Node branch = model.graph().findNode("/If");
    return branch.subgraphs().get(branchIndex).nodes().get(0).input(0);
  }

  @Test
  void aReplacedValueReadOnlyInsideIfBodiesIsRedirectedThere() {
    Model model = modelWithBodiesReading(false);
    DriverReport report = new RewriteDriver(List.of(new IdentityElimination()), 16, Verifier::verify).run(model);
    assertEquals(1, report.applied("remove-identity"));
    Value relu = model.graph().findNode("/Relu").output();
    assertSame(relu, bodyInput(model, 0));
    assertSame(relu, bodyInput(model, 1));
    assertEquals(List.of("Relu", "If"), model.graph().nodes().stream().map(node -> node.opType().name()).toList());
    // The body reads count as two uses by (nodes inside) the If, and the Identity's value has none left.
    assertEquals(2, relu.uses().size());
  }

  @Test
  void aReplacedValueReadInsideAndOutsideBodiesIsRedirectedEverywhere() {
    Model model = modelWithBodiesReading(true);
    DriverReport report = new RewriteDriver(List.of(new IdentityElimination()), 16, Verifier::verify).run(model);
    assertEquals(1, report.applied("remove-identity"));
    assertEquals(Map.of(), report.stats("remove-identity").rejections());
    Value relu = model.graph().findNode("/Relu").output();
    assertSame(relu, bodyInput(model, 0));
    assertSame(relu, model.graph().findNode("/Tanh").input(0));
    assertEquals(3, relu.uses().size());
  }

  /** A rewrite whose new node reads a value produced after the If: the If (through its body) would read too early. */
  @Test
  void aBodyUseBeforeTheReplacementsInputsIsRejectedAsAUseByItsEnclosingNode() {
    Model model = modelWithBodiesReading(false);
    Graph graph = model.graph();
    Value late = appendLateOutput(graph);
    Rule addLate = TestRules.rule("add-late", p -> p.op(Onnx.IDENTITY, p.input("x")),
        (match, builder) -> builder.op(Onnx.ADD, List.of(match.value("x"), late)));
    DriverReport report = new RewriteDriver(List.of(addLate), 16, Verifier::verify).run(model);
    assertEquals(0, report.applied("add-late"));
    assertEquals(Map.of("a user of a replaced value comes before the replacement's inputs", 1),
        report.stats("add-late").rejections());
    assertSame(graph.findNode("/Identity").output(), bodyInput(model, 0));
  }

  /** New weights of a rewrite the splice refuses never reach the graph, not even until the sweep ends. */
  @Test
  void initializersOfARefusedRewriteAreNeverAdded() {
    Model model = modelWithBodiesReading(false);
    Graph graph = model.graph();
    Value late = appendLateOutput(graph);
    Rule addLateTimesTwo = TestRules.rule("add-late-times-two", p -> p.op(Onnx.IDENTITY, p.input("x")), (match, builder) -> {
      Value two = builder.initializer("two", dev.kiln.graph.Tensor.ofFloats(new long[0], 2f));
      assertEquals(null, two.graph(), "staged, not yet in the graph");
      return builder.op(Onnx.ADD, List.of(match.value("x"), builder.op(Onnx.MUL, List.of(late, two))));
    });
    List<Integer> seen = new java.util.ArrayList<>();
    Rule observer = TestRules.rule("observer", p -> p.op(Onnx.EXP, p.input("x")), match -> {
      seen.add(match.graph().initializers().size());
      return Check.fail("only looks");
    }, (match, builder) -> {
      throw new AssertionError("never rewrites");
    });
    DriverReport report = new RewriteDriver(List.of(addLateTimesTwo, observer), 16, Verifier::verify).run(model);
    assertEquals(0, report.applied("add-late-times-two"));
    assertEquals(List.of(0), seen);
    assertEquals(List.of(), graph.initializers());
  }
}
