package dev.kiln.optimizer.folding;

/** The shape rules of the evaluator, for checking a graph whose shapes became static (no data needed). */
public final class ShapeChecks {
  private ShapeChecks() {}

  /** The dims Reshape gives; an {@link EvaluationException} when the element counts cannot match. */
  public static long[] reshape(long[] dims, long[] target, boolean allowZero) {
    return Reshape.target(dims, target, allowZero);
  }

  /** The numpy broadcast; an {@link EvaluationException} naming the shapes when two sizes conflict. */
  public static long[] broadcast(long[]... shapes) {
    return Indexing.broadcast(shapes);
  }
}
