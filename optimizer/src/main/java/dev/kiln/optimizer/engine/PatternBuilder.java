package dev.kiln.optimizer.engine;

import dev.kiln.graph.Onnx;
import dev.kiln.graph.OpType;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/** Makes patterns. Add, Mul, Max, Min, Sum, Equal, And, Or match their two operands in either order. */
public final class PatternBuilder {
  private static final Set<OpType> COMMUTATIVE =
      Set.of(Onnx.ADD, Onnx.MUL, Onnx.MAX, Onnx.MIN, Onnx.SUM, Onnx.EQUAL, Onnx.AND, Onnx.OR);

  /** A node of {@code type} whose inputs match {@code inputs}. */
  public Pattern.Op op(OpType type, Pattern... inputs) {
    return new Pattern.Op(Set.of(type), List.of(inputs), COMMUTATIVE.contains(type) && inputs.length == 2);
  }

  /** A node of any of {@code types} (e.g. Div or Mul by a reciprocal) with these inputs. */
  public Pattern.Op opAnyOf(Set<OpType> types, Pattern... inputs) {
    boolean commutative = inputs.length == 2 && COMMUTATIVE.containsAll(types);
    return new Pattern.Op(new LinkedHashSet<>(types), List.of(inputs), commutative);
  }

  /** Any value, bound to {@code name}. */
  public Pattern.Any any(String name) {
    return new Pattern.Any(name);
  }

  /** Any value, bound to {@code name}: a synonym of {@link #any} that reads better for a pattern's inputs. */
  public Pattern.Any input(String name) {
    return new Pattern.Any(name);
  }

  /** A constant value, bound to {@code name}. */
  public Pattern.Constant constant(String name) {
    return new Pattern.Constant(name, null);
  }

  /** A constant whose every element equals {@code value} (relative tolerance 1e-6). */
  public Pattern.Constant scalar(double value) {
    return new Pattern.Constant(null, value);
  }

  /** A constant whose every element equals {@code value}, bound to {@code name}. */
  public Pattern.Constant scalar(String name, double value) {
    return new Pattern.Constant(name, value);
  }

  /** Any value, bound to {@code key}. */
  public Pattern.Any any(ValueKey key) {
    return any(key.name());
  }

  /** Any value, bound to {@code key}: a synonym of {@link #any(ValueKey)} for a pattern's inputs. */
  public Pattern.Any input(ValueKey key) {
    return input(key.name());
  }

  /** A constant value, bound to {@code key}. */
  public Pattern.Constant constant(ValueKey key) {
    return constant(key.name());
  }

  /** A constant whose every element equals {@code value}, bound to {@code key}. */
  public Pattern.Constant scalar(ValueKey key, double value) {
    return scalar(key.name(), value);
  }

  public Pattern.AnyOf anyOf(Pattern... alternatives) {
    return new Pattern.AnyOf(List.of(alternatives));
  }

  /** {@code inner}, or {@code Cast(inner)}. */
  public Pattern.OptionalCast optionalCast(Pattern inner) {
    return new Pattern.OptionalCast(inner);
  }
}
