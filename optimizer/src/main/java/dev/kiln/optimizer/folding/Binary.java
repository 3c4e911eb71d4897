package dev.kiln.optimizer.folding;

import dev.kiln.graph.DataType;
import dev.kiln.graph.Node;
import java.util.List;
import java.util.function.DoubleBinaryOperator;
import java.util.function.LongBinaryOperator;

/**
 * An elementwise binary op with numpy broadcasting: arithmetic keeps the first input's type (reals computed in
 * double and rounded to it, integers wrapped to it); comparisons and logic answer bool.
 */
final class Binary implements OpEvaluator {
  private final DoubleBinaryOperator real;
  private final LongBinaryOperator integer;
  private final boolean answersBool;
  /** Pow alone may take an exponent of another type. */
  private final boolean mixedTypes;

  private Binary(DoubleBinaryOperator real, LongBinaryOperator integer, boolean answersBool, boolean mixedTypes) {
    this.real = real;
    this.integer = integer;
    this.answersBool = answersBool;
    this.mixedTypes = mixedTypes;
  }

  static Binary arithmetic(DoubleBinaryOperator real, LongBinaryOperator integer) {
    return new Binary(real, integer, false, false);
  }

  static Binary power() {
    // An integer base stays integer: pow in double, truncated back as the runtime's std::pow cast does.
    return new Binary(Math::pow, (a, b) -> (long) Math.pow(a, b), false, true);
  }

  static Binary comparison(DoubleBinaryOperator real, LongBinaryOperator integer) {
    return new Binary(real, integer, true, false);
  }

  static long divide(long a, long b) {
    if (b == 0) {
      throw new EvaluationException("integer division by zero");
    }
    return a / b;
  }

  @Override
  public List<HostTensor> evaluate(Node node, List<HostTensor> inputs, Limit limit) {
    HostTensor a = inputs.get(0);
    HostTensor b = inputs.get(1);
    if (!mixedTypes && a.type() != b.type()) {
      throw new EvaluationException(node.opType().name() + " of " + a.type() + " and " + b.type());
    }
    long[] outDims = Indexing.broadcast(a.dims(), b.dims());
    int count = limit.check(outDims);
    int[] fromA = Indexing.broadcastIndex(a.dims(), outDims, count);
    int[] fromB = Indexing.broadcastIndex(b.dims(), outDims, count);
    boolean inReals = a.isReal() || (mixedTypes && b.isReal());
    DataType outType = answersBool ? DataType.BOOL : a.type();
    if (HostTensor.isReal(outType)) {
      double[] out = new double[count];
      for (int i = 0; i < count; i++) {
        out[i] = HostTensor.roundReal(outType, real.applyAsDouble(a.real(fromA[i]), b.real(fromB[i])));
      }
      return List.of(HostTensor.ofDoubles(outType, outDims, out));
    }
    long[] out = new long[count];
    for (int i = 0; i < count; i++) {
      // Reals compared (bool out) or an integer base raised to a real exponent: computed in double, truncated.
      long value = inReals ? (long) real.applyAsDouble(a.real(fromA[i]), b.real(fromB[i]))
          : integer.applyAsLong(a.integer(fromA[i]), b.integer(fromB[i]));
      out[i] = HostTensor.wrapInteger(outType, value);
    }
    return List.of(HostTensor.ofLongs(outType, outDims, out));
  }
}
