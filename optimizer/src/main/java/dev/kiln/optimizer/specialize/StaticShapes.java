package dev.kiln.optimizer.specialize;

import dev.kiln.common.KilnException;
import dev.kiln.common.Printable;
import dev.kiln.graph.Graph;
import dev.kiln.graph.Model;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.OpType;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Value;
import dev.kiln.graph.infer.ShapeInference;
import dev.kiln.optimizer.engine.Constants;
import dev.kiln.optimizer.folding.EvaluationException;
import dev.kiln.optimizer.folding.ShapeChecks;
import dev.kiln.optimizer.passes.ConstantFolding;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * {@code --static}: binds symbolic dims of the graph inputs to sizes, folds every shape computation that became
 * constant, checks that the graph can take the binding (each Reshape divides, each broadcast agrees) and writes the
 * inferred static shapes on the graph outputs. A binding the graph cannot take is bad input naming the node.
 */
public final class StaticShapes {
  private StaticShapes() {}

  private static final Set<OpType> BROADCASTING = Set.of(Onnx.ADD, Onnx.SUB, Onnx.MUL, Onnx.DIV, Onnx.POW, Onnx.WHERE,
      Onnx.EQUAL, Onnx.LESS, Onnx.GREATER, Onnx.AND, Onnx.OR);

  /** The symbolic dim names of the graph inputs (what {@code --static} may bind). */
  public static Set<String> symbolicDims(Graph graph) {
    Set<String> names = new TreeSet<>();
    for (Value input : graph.inputs()) {
      if (input.isInitializer() || input.shape() == null) {
        continue;
      }
      for (Shape.Dim dim : input.shape().dims()) {
        if (dim instanceof Shape.Symbolic symbolic) {
          names.add(symbolic.name());
        }
      }
    }
    return names;
  }

  /**
   * Binds {@code dims} (names absent from this graph are ignored: a pipeline shares one binding) and folds.
   *
   * @return the nodes removed
   */
  public static int apply(Model model, Map<String, Long> dims, long foldLimitBytes, String label) {
    Graph graph = model.graph();
    int before = graph.totalNodeCount();
    for (Value input : graph.inputs()) {
      if (input.isInitializer() || input.shape() == null) {
        continue;
      }
      List<Shape.Dim> bound = new ArrayList<>();
      for (Shape.Dim dim : input.shape().dims()) {
        bound.add(dim instanceof Shape.Symbolic symbolic && dims.containsKey(symbolic.name())
            ? Shape.known(dims.get(symbolic.name())) : dim);
      }
      input.setType(input.dataType(), Shape.of(bound));
    }
    // Folding a shape makes the next Reshape's output known, which makes the next Shape foldable: to a fixpoint.
    ConstantFolding folding = new ConstantFolding(foldLimitBytes);
    for (int round = 0; round < 16 && folding.run(model) > 0; round++) {
      check(model, label);
    }
    check(model, label);
    ShapeInference shapes = ShapeInference.of(model);
    for (Value output : graph.outputs()) {
      Shape shape = shapes.shape(output);
      if (shape != null && shape.isFullyKnown() && output.dataType() != null) {
        output.setType(output.dataType(), shape);
      }
    }
    return before - graph.totalNodeCount();
  }

  /** Every Reshape with a constant target and a static input, and every broadcast of static shapes, must work. */
  private static void check(Model model, String label) {
    ShapeInference shapes = ShapeInference.of(model);
    for (Node node : model.graph().nodes()) {
      try {
        if (node.is(Onnx.RESHAPE) && node.inputCount() > 1) {
          Shape input = shapes.shape(node.input(0));
          var target = Constants.tensor(node.input(1));
          if (input != null && input.isFullyKnown() && target != null) {
            ShapeChecks.reshape(input.sizes(), target.longs(), node.intAttribute("allowzero", 0) != 0);
          }
        } else if (BROADCASTING.contains(node.opType())) {
          List<long[]> operands = new ArrayList<>();
          for (Value value : node.inputs()) {
            Shape shape = shapes.shape(value);
            if (shape != null && shape.isFullyKnown()) {
              operands.add(shape.sizes());
            }
          }
          if (operands.size() == node.inputCount()) {
            ShapeChecks.broadcast(operands.toArray(new long[0][]));
          }
        }
      } catch (EvaluationException refused) {
        throw new KilnException.BadInput(label + ": --static binding cannot be taken by node "
            + Printable.quoted(node.name()) + " (" + node.opType().key() + "): " + refused.getMessage());
      }
    }
  }
}
