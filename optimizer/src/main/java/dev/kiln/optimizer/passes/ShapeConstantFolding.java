package dev.kiln.optimizer.passes;

import dev.kiln.graph.DataType;
import dev.kiln.graph.Graph;
import dev.kiln.graph.GraphEditor;
import dev.kiln.graph.Model;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import dev.kiln.graph.infer.ShapeInference;
import dev.kiln.optimizer.engine.RewriteDriver;
import java.util.ArrayList;
import java.util.List;

/**
 * Replaces shape arithmetic whose value inference knows exactly (e.g. {@code Gather(Shape(x), 1)} on a fixed
 * channel count, {@code Div} of two such numbers) by one int64 initializer, then drops what became dead.
 * Values that depend on a symbolic size (batch, height) stay computed: folding them would pin the model to one
 * resolution.
 */
public final class ShapeConstantFolding implements GraphPass {
  @Override
  public String name() {
    return "fold-shape-constants";
  }

  @Override
  public int run(Model model) {
    Graph graph = model.graph();
    ShapeInference shapes = ShapeInference.of(model);
    int folded = 0;
    List<Node> nodes = new ArrayList<>(graph.nodes());
    GraphEditor editor = new GraphEditor(graph);
    for (Node node : nodes) {
      if (node.is(Onnx.CONSTANT) || node.outputCount() != 1 || node.output() == null || node.output().isGraphOutput()
          || !node.subgraphs().isEmpty()) {
        continue;
      }
      Value output = node.output();
      DataType type = shapes.dataType(output);
      if (type != DataType.INT64) {
        continue;
      }
      long[] values = shapes.knownElements(output);
      var shape = shapes.shape(output);
      if (values == null || shape == null || shape.rank() > 1 || !shape.isFullyKnown()
          || shape.elementCount() != values.length) {
        continue;
      }
      Value constant = editor.addInitializer(output.name() + "_folded", Tensor.ofLongs(shape.sizes(), values));
      output.replaceAllUsesWith(constant);
      folded++;
    }
    RewriteDriver.removeDeadNodes(graph);
    RewriteDriver.removeUnusedInitializers(graph);
    return folded;
  }
}
