package dev.kiln.optimizer.precision;

import dev.kiln.graph.DataType;
import dev.kiln.graph.Graph;
import dev.kiln.graph.Model;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Value;
import dev.kiln.graph.infer.ShapeInference;
import java.util.ArrayList;
import java.util.Set;

/**
 * Removes the Casts a precision change leaves behind: a Cast to the type its input already has (no-op), and
 * chains of float-to-float Casts, which read the chain's first input directly. Collapsing a chain drops the
 * intermediate rounding only, so values get more exact, never less; above all a float32 → float16 → float32 pair
 * between two float32 nodes goes away — left in place it overflows exactly the tensor those nodes were kept
 * float32 for. Casts to or from integers truncate and are never collapsed.
 */
public final class CastCleanup {
  private CastCleanup() {}

  private static final Set<DataType> FLOATS = Set.of(DataType.FLOAT, DataType.FLOAT16, DataType.DOUBLE, DataType.BFLOAT16);

  /** Rewrites {@code model} in place; returns how many Cast nodes it removed. */
  public static int run(Model model) {
    Graph graph = model.graph();
    int before = countCasts(graph);
    boolean changed = true;
    while (changed) {
      changed = false;
      ShapeInference types = ShapeInference.of(model);
      for (Node node : new ArrayList<>(graph.nodes())) {
        if (!node.is(Onnx.CAST) || node.graph() == null) {
          continue;
        }
        Value input = node.input(0);
        DataType from = types.dataType(input);
        DataType to = DataType.fromNumber((int) node.intAttribute("to", 0));
        Node previous = input.producer();
        if (previous != null && previous.is(Onnx.CAST) && FLOATS.contains(from) && FLOATS.contains(to)
            && FLOATS.contains(types.dataType(previous.input(0)))) {
          node.setInput(0, previous.input(0));
          if (!previous.output().hasUses() && !previous.output().isGraphOutput()) {
            graph.remove(previous);
          }
          changed = true;
          continue;
        }
        if (from == to && from != null && !(node.output().isGraphOutput() && (input.isGraphInput() || input.isGraphOutput()))) {
          Value output = node.output();
          if (output.isGraphOutput()) {
            // The interface keeps its name: the input takes it over.
            String name = output.name();
            output.setName(name + "_removed_cast");
            input.setName(name);
            if (output.dataType() != null) {
              input.setType(output.dataType(), output.shape());
            }
          }
          output.replaceAllUsesWith(input);
          graph.remove(node);
          changed = true;
        }
      }
    }
    return before - countCasts(graph);
  }

  private static int countCasts(Graph graph) {
    int count = 0;
    for (Node node : graph.nodes()) {
      if (node.is(Onnx.CAST)) {
        count++;
      }
    }
    return count;
  }
}
