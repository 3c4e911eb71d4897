package dev.kiln.optimizer.quantize;

import dev.kiln.graph.Node;
import dev.kiln.graph.Value;

/**
 * MatMul(x, W[K,N]) ⇒ MatMul(DQ(Q(x)), DQ(W_int8, per output column, axis 1)): with no Q after it, ORT's CPU QDQ
 * selector fuses the group into com.microsoft MatMulIntegerToFloat (int8 GEMM, float result), so the output needs
 * no calibrated range and the float consumers (residual adds, attention) read an unrounded value.
 */
final class MatMulQuantization {
  private MatMulQuantization() {}

  /** Whether {@code matMul} reads a constant 2-D weight as B; null when it does, else why not. */
  static String unsupported(Node matMul) {
    Value weight = matMul.input(1);
    if (weight == null || !weight.isInitializer()) {
      return "both operands are activations (attention scores stay float)";
    }
    if (weight.initializer().dims().length != 2) {
      return "weight is not 2-D";
    }
    return null;
  }

  static void full(Node matMul, QdqEditor qdq) {
    qdq.quantizeInput(matMul, 0);
    weightsOnly(matMul, qdq);
  }

  /** Only the weight becomes int8: ORT dequantizes it at run time and runs the float MatMul. */
  static void weightsOnly(Node matMul, QdqEditor qdq) {
    Value weight = matMul.input(1);
    matMul.setInput(1, qdq.dequantizeWeight(weight.name(), PerChannelWeights.quantize(weight.initializer(), 1), 1, matMul));
    qdq.dropIfUnused(weight);
  }
}
