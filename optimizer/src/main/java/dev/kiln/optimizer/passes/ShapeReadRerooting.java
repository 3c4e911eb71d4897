package dev.kiln.optimizer.passes;

import dev.kiln.graph.Attribute;
import dev.kiln.graph.Graph;
import dev.kiln.graph.GraphEditor;
import dev.kiln.graph.Model;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import dev.kiln.graph.infer.DimArithmetic;
import dev.kiln.graph.infer.ShapeInference;
import dev.kiln.optimizer.engine.Constants;
import dev.kiln.optimizer.engine.RewriteDriver;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code Gather(Shape(v), i)} reading a symbolic size  ⇒  the same size read off the earliest tensor that has
 * each of its factors as a whole dimension (a graph input's "sequence_length", a feature map's height), times
 * the constant part. Torch reads sizes off whatever tensor is at hand — CLIP the key projection, diffusers the
 * attention context — and those reads would keep an attention core alive after it was fused. Re-rooted reads
 * also become identical, so {@link ShapeSubexpressionElimination} merges them.
 */
public final class ShapeReadRerooting implements GraphPass {
  @Override
  public String name() {
    return "reroot-shape-reads";
  }

  private record Source(Value value, int axis, int position) {}

  @Override
  public int run(Model model) {
    Graph graph = model.graph();
    ShapeInference shapes = ShapeInference.of(model);
    Map<String, Source> sources = new HashMap<>();
    for (Value input : graph.inputs()) {
      // A ControlNet residual input's dims equal its skip sample's only by the ControlNet contract, declared while
      // the rules run (ControlNetShapes): no size may be read off it, or the graph's sizes would depend on it.
      if (!input.isInitializer() && !dev.kiln.validator.shapes.ResidualInputs.isResidualInput(input.name())) {
        record(sources, input, shapes.shape(input), -1);
      }
    }
    List<Node> nodes = new ArrayList<>(graph.nodes());
    Map<Node, Integer> position = new IdentityHashMap<>();
    for (int i = 0; i < nodes.size(); i++) {
      Node node = nodes.get(i);
      position.put(node, i);
      for (Value output : node.outputs()) {
        if (output != null && !node.is(Onnx.SHAPE)) {
          record(sources, output, shapes.shape(output), i);
        }
      }
    }
    GraphEditor editor = new GraphEditor(graph);
    int rerooted = 0;
    for (Node gather : nodes) {
      if (!gather.is(Onnx.GATHER) || gather.intAttribute("axis", 0) != 0 || gather.output() == null) {
        continue;
      }
      Node shapeNode = gather.input(0).producer();
      if (shapeNode == null || !shapeNode.is(Onnx.SHAPE) || shapeNode.hasAttribute("start") || shapeNode.hasAttribute("end")) {
        continue;
      }
      Tensor index = Constants.tensor(gather.input(1));
      if (index == null || index.elementCount() != 1) {
        continue;
      }
      List<Shape.Dim> elements = shapes.elements(gather.output());
      if (elements == null || elements.size() != 1 || !(elements.get(0) instanceof Shape.Symbolic)) {
        continue;
      }
      DimArithmetic.Factors factors = DimArithmetic.factor(elements.get(0));
      List<Source> parts = new ArrayList<>();
      boolean complete = factors != null && !factors.atoms().isEmpty();
      for (String atom : complete ? factors.atoms() : List.<String>of()) {
        Source source = sources.get(atom);
        if (source == null || source.position() >= position.get(gather)) {
          complete = false;
          break;
        }
        parts.add(source);
      }
      if (!complete) {
        continue;
      }
      long[] indexOfAxis = new long[] {((Number) index.longs()[0]).longValue()};
      if (parts.size() == 1 && factors.coefficient() == 1 && parts.get(0).value() == shapeNode.input(0)
          && parts.get(0).axis() == indexOfAxis[0]) {
        continue;
      }
      String scope = scopeOf(gather.name());
      Value product = null;
      for (Source part : parts) {
        Node read = editor.newNode(Onnx.SHAPE, scope + "RerootedShape", List.of(part.value()), scope + "RerootedShape_output");
        editor.insertBefore(gather, read);
        Value axis = editor.addInitializer(scope + "rerooted_axis", Tensor.ofLongs(index.dims(), part.axis()));
        Node pick = editor.newNode(Onnx.GATHER, scope + "RerootedGather", List.of(read.output(), axis),
            scope + "RerootedGather_output", Attribute.ofInt("axis", 0));
        editor.insertBefore(gather, pick);
        product = product == null ? pick.output() : multiply(editor, gather, scope, product, pick.output());
      }
      if (factors.coefficient() != 1) {
        Value coefficient = editor.addInitializer(scope + "rerooted_factor", Tensor.ofLongs(index.dims(), factors.coefficient()));
        product = multiply(editor, gather, scope, product, coefficient);
      }
      gather.output().replaceAllUsesWith(product);
      rerooted++;
    }
    RewriteDriver.removeDeadNodes(graph);
    RewriteDriver.removeUnusedInitializers(graph);
    return rerooted;
  }

  private static Value multiply(GraphEditor editor, Node before, String scope, Value a, Value b) {
    Node mul = editor.newNode(Onnx.MUL, scope + "RerootedMul", List.of(a, b), scope + "RerootedMul_output");
    editor.insertBefore(before, mul);
    return mul.output();
  }

  /** Records each whole-atom dim of {@code value} as the source of that atom, first come first kept. */
  private static void record(Map<String, Source> sources, Value value, Shape shape, int position) {
    if (shape == null) {
      return;
    }
    for (int axis = 0; axis < shape.rank(); axis++) {
      if (shape.dim(axis) instanceof Shape.Symbolic) {
        DimArithmetic.Factors factors = DimArithmetic.factor(shape.dim(axis));
        if (factors != null && factors.coefficient() == 1 && factors.atoms().size() == 1) {
          sources.putIfAbsent(factors.atoms().get(0), new Source(value, axis, position));
        }
      }
    }
  }

  private static String scopeOf(String name) {
    int slash = name.lastIndexOf('/');
    return slash < 0 ? "" : name.substring(0, slash + 1);
  }
}
