package dev.kiln.optimizer.passes;

import dev.kiln.graph.DataType;
import dev.kiln.graph.Graph;
import dev.kiln.graph.GraphEditor;
import dev.kiln.graph.Model;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Use;
import dev.kiln.graph.Value;
import dev.kiln.graph.infer.ShapeInference;
import dev.kiln.optimizer.engine.Constants;
import dev.kiln.optimizer.engine.RewriteDriver;
import dev.kiln.optimizer.folding.ConstantEvaluator;
import dev.kiln.optimizer.folding.EvaluationException;
import dev.kiln.optimizer.folding.HostTensor;
import dev.kiln.optimizer.folding.OpEvaluator;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Folds every node whose inputs are all known into initializers, with {@link ConstantEvaluator}. Known are
 * constants (initializers that are not graph inputs, Constant nodes), what this pass already computed, the dims of
 * a value whose shape is fully static (what Shape reads), and int64 values that shape inference knows exactly
 * although the model has symbolic sizes ({@code Gather(Shape(x), 1)} on a fixed channel count). Anything that
 * depends on a symbolic size (batch, height) stays computed, so the model keeps its dynamic axes; after
 * {@code --static} has bound them, every shape computation folds.
 *
 * <p>Two limits keep the model file from growing: no result over {@code limitBytes} is made (the causal mask, the
 * position ids and the attention scales are small; an Expand to activation size is not), and no input over it is
 * read — so a large external weight is never copied into a new inline tensor (Transpose or Cast of a weight stays
 * for the runtime's own folding, which does it in memory).
 */
public final class ConstantFolding implements GraphPass {
  /** The default of {@code --fold-limit}: 1 MiB of output. */
  public static final long DEFAULT_LIMIT_BYTES = 1 << 20;

  private final long limitBytes;

  public ConstantFolding() {
    this(DEFAULT_LIMIT_BYTES);
  }

  public ConstantFolding(long limitBytes) {
    if (limitBytes < 0) {
      throw new IllegalArgumentException("fold limit " + limitBytes + " is negative");
    }
    this.limitBytes = limitBytes;
  }

  @Override
  public String name() {
    return "fold-constants";
  }

  @Override
  public int run(Model model) {
    Graph graph = model.graph();
    ShapeInference shapes = ShapeInference.of(model);
    Map<Value, HostTensor> known = new HashMap<>();
    Set<Node> folded = new HashSet<>();
    OpEvaluator.Limit limit = new OpEvaluator.Limit(Math.max(limitBytes, 1));
    for (Node node : graph.nodes()) {
      if (node.is(Onnx.CONSTANT) || !node.subgraphs().isEmpty()) {
        continue;
      }
      List<HostTensor> results = evaluate(node, known, shapes, limit);
      if (results == null) {
        results = inferred(node, shapes);
      }
      if (results == null) {
        continue;
      }
      folded.add(node);
      for (int i = 0; i < node.outputCount(); i++) {
        if (node.output(i) != null) {
          known.put(node.output(i), results.get(i));
        }
      }
    }
    // Materialize only what a node that stays (or the graph's interface) reads: a chain folds to its last value.
    GraphEditor editor = new GraphEditor(graph);
    int nodesBefore = graph.nodes().size();
    for (Node node : new ArrayList<>(graph.nodes())) {
      if (!folded.contains(node)) {
        continue;
      }
      for (Value output : node.outputs()) {
        if (output == null || output.isGraphOutput() || !readOutsideFold(output, folded)) {
          continue;
        }
        Value constant = editor.addInitializer(output.name() + "_folded", known.get(output).toTensor());
        output.replaceAllUsesWith(constant);
      }
    }
    // Always, as the shape folding this pass replaced did: what earlier steps left dead goes too, so a second
    // optimization of an optimized model changes nothing.
    RewriteDriver.removeDeadNodes(graph);
    RewriteDriver.removeUnusedInitializers(graph);
    // Changes made: the nodes folded away (Constant nodes only the folded chain read included).
    return nodesBefore - graph.nodes().size();
  }

  private static boolean readOutsideFold(Value value, Set<Node> folded) {
    for (Use use : value.uses()) {
      if (!folded.contains(use.node())) {
        return true;
      }
    }
    return false;
  }

  /** The node's outputs from known inputs, or null when an input is unknown or the op is not covered here. */
  private List<HostTensor> evaluate(Node node, Map<Value, HostTensor> known, ShapeInference shapes, OpEvaluator.Limit limit) {
    if (!ConstantEvaluator.covers(node)) {
      return null;
    }
    List<HostTensor> inputs = new ArrayList<>();
    for (int i = 0; i < node.inputCount(); i++) {
      Value input = node.input(i);
      if (input == null) {
        inputs.add(null);
        continue;
      }
      HostTensor value = known(input, known);
      if (value == null && i == 0 && node.is(Onnx.SHAPE)) {
        // Shape reads only the dims: a fully static input need not be constant.
        Shape shape = shapes.shape(input);
        if (shape != null && shape.isFullyKnown()) {
          return List.of(ConstantEvaluator.shapeOf(node, shape.sizes()));
        }
      }
      if (value == null) {
        return null;
      }
      inputs.add(value);
    }
    try {
      List<HostTensor> results = ConstantEvaluator.evaluate(node, inputs, limit);
      for (HostTensor result : results) {
        if (result.byteSize() > limitBytes) {
          return null;
        }
      }
      return results;
    } catch (EvaluationException notFoldable) {
      // Left to the runtime, which reports what it rejects with the node's name.
      return null;
    }
  }

  private HostTensor known(Value value, Map<Value, HostTensor> known) {
    HostTensor computed = known.get(value);
    if (computed != null) {
      return computed;
    }
    Tensor tensor = Constants.tensor(value);
    if (tensor == null || !HostTensor.supports(tensor.dataType()) || tensor.byteSize() > limitBytes) {
      return null;
    }
    HostTensor decoded = HostTensor.of(tensor);
    known.put(value, decoded);
    return decoded;
  }

  /** An int64 (or int32) output that inference knows element by element although its inputs are not all constant. */
  private static List<HostTensor> inferred(Node node, ShapeInference shapes) {
    if (node.outputCount() != 1 || node.output() == null) {
      return null;
    }
    Value output = node.output();
    DataType type = shapes.dataType(output);
    if (type != DataType.INT64 && type != DataType.INT32) {
      return null;
    }
    long[] values = shapes.knownElements(output);
    Shape shape = shapes.shape(output);
    if (values == null || shape == null || shape.rank() > 1 || !shape.isFullyKnown() || shape.elementCount() != values.length) {
      return null;
    }
    return List.of(HostTensor.ofLongs(type, shape.sizes(), values.clone()));
  }
}
