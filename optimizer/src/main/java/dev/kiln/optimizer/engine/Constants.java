package dev.kiln.optimizer.engine;

import dev.kiln.graph.Attribute;
import dev.kiln.graph.DataType;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;

/** Reading constant data behind a value: an initializer that is not an overridable graph input, or a Constant node. */
public final class Constants {
  private Constants() {}

  /** The constant tensor of {@code value}, or null when it is not a constant. */
  public static Tensor tensor(Value value) {
    if (value == null) {
      return null;
    }
    if (value.initializer() != null) {
      // An initializer that is also a graph input is only a default; the caller may feed something else.
      return value.isGraphInput() ? null : value.initializer();
    }
    Node producer = value.producer();
    if (producer == null || !producer.is(Onnx.CONSTANT)) {
      return null;
    }
    Attribute tensor = producer.attribute("value");
    if (tensor != null) {
      return tensor.asTensor();
    }
    Attribute floatValue = producer.attribute("value_float");
    if (floatValue != null) {
      return Tensor.ofFloats(new long[0], floatValue.asFloat());
    }
    Attribute floatValues = producer.attribute("value_floats");
    if (floatValues != null) {
      float[] values = floatValues.asFloats();
      return Tensor.ofFloats(new long[] {values.length}, values);
    }
    Attribute intValue = producer.attribute("value_int");
    if (intValue != null) {
      return Tensor.ofLongs(new long[0], intValue.asLong());
    }
    Attribute intValues = producer.attribute("value_ints");
    if (intValues != null) {
      long[] values = intValues.asLongs();
      return Tensor.ofLongs(new long[] {values.length}, values);
    }
    return null;
  }

  /** True when every element of the numeric tensor equals {@code expected} within a relative 1e-6. */
  public static boolean allEqual(Tensor tensor, double expected) {
    // A "scalar" is small; reading a large weight here would page it in from its memory map for nothing.
    if (tensor == null || tensor.elementCount() == 0 || tensor.elementCount() > 4096) {
      return false;
    }
    if (!tensor.dataType().isFloatingPoint() && !tensor.dataType().isInteger() && tensor.dataType() != DataType.BOOL) {
      return false;
    }
    double[] values = tensor.doubles();
    for (double value : values) {
      if (!(Math.abs(value - expected) <= 1e-6 * Math.max(1.0, Math.abs(expected)))) {
        return false;
      }
    }
    return true;
  }

  /** The single value of a one-element tensor (any rank), or NaN. */
  public static double scalar(Tensor tensor) {
    if (tensor == null || tensor.elementCount() != 1) {
      return Double.NaN;
    }
    return tensor.doubles()[0];
  }
}
