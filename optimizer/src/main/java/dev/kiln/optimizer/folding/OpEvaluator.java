package dev.kiln.optimizer.folding;

import dev.kiln.graph.Node;
import java.util.List;

/** One ONNX op over constant inputs. A null input is an omitted optional input. */
public interface OpEvaluator {
  /**
   * The node's outputs, or an {@link EvaluationException} for what this evaluator does not cover.
   *
   * @param limit the most elements any output may hold; checked before anything that size is allocated
   */
  List<HostTensor> evaluate(Node node, List<HostTensor> inputs, Limit limit);

  /** The output budget of one evaluation. */
  record Limit(long maxElements) {
    /** Throws when a tensor of {@code dims} would be over the budget; else its element count as an int. */
    public int check(long[] dims) {
      long count = HostTensor.elementCount(dims);
      if (count > maxElements) {
        throw new EvaluationException("result of " + count + " elements is over the fold limit of " + maxElements);
      }
      return (int) count;
    }

    public static final Limit NONE = new Limit(Integer.MAX_VALUE - 8);
  }
}
