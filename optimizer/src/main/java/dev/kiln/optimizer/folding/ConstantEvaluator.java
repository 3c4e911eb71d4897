package dev.kiln.optimizer.folding;

import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.OpType;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Evaluates ONNX ops over constant tensors: the shape and index arithmetic exporters emit (Shape, Gather,
 * Unsqueeze, Squeeze, Concat, Cast, Slice, Reshape, Range, ConstantOfShape, Expand, Where, Transpose) and the
 * elementwise arithmetic, comparisons and logic around it. Each op is one small class checked against ONNX's
 * conformance data (ConstantEvaluatorConformanceTest).
 */
public final class ConstantEvaluator {
  private ConstantEvaluator() {}

  private static final Map<OpType, OpEvaluator> EVALUATORS = new HashMap<>();

  static {
    EVALUATORS.put(Onnx.SHAPE, new ShapeOf());
    EVALUATORS.put(Onnx.GATHER, new Gather());
    EVALUATORS.put(Onnx.UNSQUEEZE, new Unsqueeze());
    EVALUATORS.put(Onnx.SQUEEZE, new Squeeze());
    EVALUATORS.put(Onnx.CONCAT, new Concat());
    EVALUATORS.put(Onnx.CAST, new Cast());
    EVALUATORS.put(Onnx.SLICE, new Slice());
    EVALUATORS.put(Onnx.RESHAPE, new Reshape());
    EVALUATORS.put(Onnx.RANGE, new Range());
    EVALUATORS.put(Onnx.CONSTANT_OF_SHAPE, new ConstantOfShape());
    EVALUATORS.put(Onnx.EXPAND, new Expand());
    EVALUATORS.put(Onnx.WHERE, new Where());
    EVALUATORS.put(Onnx.TRANSPOSE, new Transpose());
    EVALUATORS.put(Onnx.ADD, Binary.arithmetic((a, b) -> a + b, (a, b) -> a + b));
    EVALUATORS.put(Onnx.SUB, Binary.arithmetic((a, b) -> a - b, (a, b) -> a - b));
    EVALUATORS.put(Onnx.MUL, Binary.arithmetic((a, b) -> a * b, (a, b) -> a * b));
    EVALUATORS.put(Onnx.DIV, Binary.arithmetic((a, b) -> a / b, Binary::divide));
    EVALUATORS.put(Onnx.POW, Binary.power());
    EVALUATORS.put(Onnx.EQUAL, Binary.comparison((a, b) -> a == b ? 1 : 0, (a, b) -> a == b ? 1 : 0));
    EVALUATORS.put(Onnx.LESS, Binary.comparison((a, b) -> a < b ? 1 : 0, (a, b) -> a < b ? 1 : 0));
    EVALUATORS.put(Onnx.LESS_OR_EQUAL, Binary.comparison((a, b) -> a <= b ? 1 : 0, (a, b) -> a <= b ? 1 : 0));
    EVALUATORS.put(Onnx.GREATER, Binary.comparison((a, b) -> a > b ? 1 : 0, (a, b) -> a > b ? 1 : 0));
    EVALUATORS.put(Onnx.GREATER_OR_EQUAL, Binary.comparison((a, b) -> a >= b ? 1 : 0, (a, b) -> a >= b ? 1 : 0));
    EVALUATORS.put(Onnx.AND, Binary.comparison((a, b) -> a != 0 && b != 0 ? 1 : 0, (a, b) -> a != 0 && b != 0 ? 1 : 0));
    EVALUATORS.put(Onnx.OR, Binary.comparison((a, b) -> a != 0 || b != 0 ? 1 : 0, (a, b) -> a != 0 || b != 0 ? 1 : 0));
    EVALUATORS.put(Onnx.SQRT, new Unary(Math::sqrt, null));
    EVALUATORS.put(Onnx.RECIPROCAL, new Unary(x -> 1.0 / x, null));
    EVALUATORS.put(Onnx.NEG, new Unary(x -> -x, x -> -x));
    EVALUATORS.put(Onnx.ABS, new Unary(Math::abs, Math::abs));
    EVALUATORS.put(Onnx.FLOOR, new Unary(Math::floor, null));
    EVALUATORS.put(Onnx.CEIL, new Unary(Math::ceil, null));
    EVALUATORS.put(Onnx.NOT, new Unary(null, x -> x == 0 ? 1 : 0));
    EVALUATORS.put(Onnx.IDENTITY, new Unary(x -> x, x -> x));
  }

  /** The ops this evaluator covers. */
  public static Set<OpType> ops() {
    return Set.copyOf(EVALUATORS.keySet());
  }

  public static boolean covers(Node node) {
    return EVALUATORS.containsKey(node.opType()) && node.subgraphs().isEmpty();
  }

  /** What a Shape node answers for an input of {@code dims} (only the dims are read, not the data). */
  public static HostTensor shapeOf(Node node, long[] dims) {
    return ShapeOf.of(node, dims);
  }

  /**
   * The node's outputs over {@code inputs} (null for an omitted optional input).
   *
   * @throws EvaluationException for what is not covered or what the op rejects
   */
  public static List<HostTensor> evaluate(Node node, List<HostTensor> inputs, OpEvaluator.Limit limit) {
    OpEvaluator evaluator = EVALUATORS.get(node.opType());
    if (evaluator == null) {
      throw new EvaluationException(node.opType().key() + " is not evaluated");
    }
    if (inputs.isEmpty() || inputs.get(0) == null) {
      throw new EvaluationException(node.opType().key() + " without its first input");
    }
    try {
      return evaluator.evaluate(node, inputs, limit);
    } catch (ArithmeticException | IndexOutOfBoundsException | NegativeArraySizeException e) {
      throw new EvaluationException(node.opType().key() + ": " + e.getMessage());
    }
  }
}
