package dev.kiln.graph.infer;

import dev.kiln.graph.Shape;
import dev.kiln.graph.Shape.Dim;
import dev.kiln.graph.Shape.Known;
import dev.kiln.graph.Shape.Symbolic;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Arithmetic on dimensions that may be symbolic. A symbolic dimension is kept as a monomial — an integer
 * coefficient times a product of named atoms — and printed canonically ("2*batch*height"), so that the same
 * size reached two ways (batch·heads reshaped, then divided by heads again) compares equal. Anything that is
 * not a monomial (a sum, a convolution's output size) becomes a new opaque atom named after its formula.
 */
public final class DimArithmetic {
  private DimArithmetic() {}

  /** coefficient × Π atoms^power; powers are positive. */
  record Monomial(long coefficient, TreeMap<String, Integer> atoms) {
    static Monomial of(Dim dim) {
      if (dim instanceof Known known) {
        return new Monomial(known.value(), new TreeMap<>());
      }
      if (!(dim instanceof Symbolic symbolic)) {
        return null;
      }
      TreeMap<String, Integer> atoms = new TreeMap<>();
      long coefficient = 1;
      for (String factor : splitFactors(symbolic.name())) {
        if (isNumber(factor)) {
          coefficient *= Long.parseLong(factor);
        } else {
          atoms.merge(factor, 1, Integer::sum);
        }
      }
      return new Monomial(coefficient, atoms);
    }

    Dim toDim() {
      if (atoms.isEmpty()) {
        return Shape.known(coefficient);
      }
      List<String> factors = new ArrayList<>();
      if (coefficient != 1) {
        factors.add(Long.toString(coefficient));
      }
      for (Map.Entry<String, Integer> atom : atoms.entrySet()) {
        for (int i = 0; i < atom.getValue(); i++) {
          factors.add(atom.getKey());
        }
      }
      return Shape.symbolic(String.join("*", factors));
    }
  }

  /** Splits "2*batch*height" into factors, leaving parenthesized atoms such as "(h+1)" whole. */
  private static List<String> splitFactors(String name) {
    List<String> factors = new ArrayList<>();
    int depth = 0;
    int start = 0;
    for (int i = 0; i < name.length(); i++) {
      char c = name.charAt(i);
      if (c == '(') {
        depth++;
      } else if (c == ')') {
        depth--;
      } else if (c == '*' && depth == 0) {
        factors.add(name.substring(start, i));
        start = i + 1;
      }
    }
    factors.add(name.substring(start));
    return factors;
  }

  private static boolean isNumber(String text) {
    if (text.isEmpty()) {
      return false;
    }
    for (int i = 0; i < text.length(); i++) {
      if (!Character.isDigit(text.charAt(i))) {
        return false;
      }
    }
    return text.length() < 18;
  }

  /** A dim as coefficient × atoms (atoms repeated per power, sorted); null for an unknown dim. */
  public record Factors(long coefficient, List<String> atoms) {}

  public static Factors factor(Dim dim) {
    Monomial monomial = Monomial.of(dim);
    if (monomial == null) {
      return null;
    }
    List<String> atoms = new ArrayList<>();
    monomial.atoms().forEach((atom, power) -> {
      for (int i = 0; i < power; i++) {
        atoms.add(atom);
      }
    });
    return new Factors(monomial.coefficient(), atoms);
  }

  public static boolean isUnknown(Dim dim) {
    return dim instanceof Shape.Unknown;
  }

  public static Dim multiply(Dim left, Dim right) {
    Monomial a = Monomial.of(left);
    Monomial b = Monomial.of(right);
    if (a == null || b == null) {
      return Shape.UNKNOWN;
    }
    if (a.coefficient == 0 || b.coefficient == 0) {
      return Shape.known(0);
    }
    TreeMap<String, Integer> atoms = new TreeMap<>(a.atoms);
    b.atoms.forEach((atom, power) -> atoms.merge(atom, power, Integer::sum));
    return new Monomial(Math.multiplyExact(a.coefficient, b.coefficient), atoms).toDim();
  }

  /** Exact division, or {@code null} when the quotient is not a monomial (the caller decides what that means). */
  public static Dim divideExactly(Dim numerator, Dim denominator) {
    Monomial a = Monomial.of(numerator);
    Monomial b = Monomial.of(denominator);
    if (a == null || b == null || b.coefficient == 0 || a.coefficient % b.coefficient != 0) {
      return null;
    }
    TreeMap<String, Integer> atoms = new TreeMap<>(a.atoms);
    for (Map.Entry<String, Integer> atom : b.atoms.entrySet()) {
      Integer power = atoms.get(atom.getKey());
      if (power == null || power < atom.getValue()) {
        return null;
      }
      if (power.equals(atom.getValue())) {
        atoms.remove(atom.getKey());
      } else {
        atoms.put(atom.getKey(), power - atom.getValue());
      }
    }
    return new Monomial(a.coefficient / b.coefficient, atoms).toDim();
  }

  /** Floor division as ONNX integer Div does it: exact when possible, else an opaque atom. */
  public static Dim divide(Dim numerator, Dim denominator) {
    if (numerator instanceof Known a && denominator instanceof Known b && b.value() != 0) {
      return Shape.known(Math.floorDiv(a.value(), b.value()));
    }
    Dim exact = divideExactly(numerator, denominator);
    if (exact != null) {
      return exact;
    }
    return opaque(numerator, "/", denominator);
  }

  public static Dim add(Dim left, Dim right) {
    if (left instanceof Known a && right instanceof Known b) {
      return Shape.known(a.value() + b.value());
    }
    if (right instanceof Known b && b.value() == 0) {
      return left;
    }
    if (left instanceof Known a && a.value() == 0) {
      return right;
    }
    return opaque(left, "+", right);
  }

  public static Dim subtract(Dim left, Dim right) {
    if (left instanceof Known a && right instanceof Known b) {
      return Shape.known(a.value() - b.value());
    }
    if (right instanceof Known b && b.value() == 0) {
      return left;
    }
    if (left.equals(right) && !isUnknown(left)) {
      return Shape.known(0);
    }
    return opaque(left, "-", right);
  }

  /** Output size of a convolution or pooling window along one axis. */
  public static Dim window(Dim input, long kernel, long stride, long padBegin, long padEnd, long dilation) {
    if (input instanceof Known known) {
      return Shape.known(Math.floorDiv(known.value() + padBegin + padEnd - dilation * (kernel - 1) - 1, stride) + 1);
    }
    long shrink = padBegin + padEnd - dilation * (kernel - 1);
    if (stride == 1) {
      return shrink == 0 ? input : add(input, Shape.known(shrink));
    }
    // An input that is a multiple of the stride (s·q) gives floor((s·q + shrink - 1) / s) + 1 = q + c exactly,
    // so a stride-2 3x3 convolution with padding 1 halves "8*h" to "4*h" instead of hiding it in a formula.
    Dim quotient = divideExactly(input, Shape.known(stride));
    if (quotient != null) {
      return add(quotient, Shape.known(Math.floorDiv(shrink - 1, stride) + 1));
    }
    if (isUnknown(input)) {
      return Shape.UNKNOWN;
    }
    return Shape.symbolic("((" + print(input) + (shrink >= 0 ? "+" : "") + shrink + "-1)/" + stride + "+1)");
  }

  private static Dim opaque(Dim left, String operator, Dim right) {
    if (isUnknown(left) || isUnknown(right)) {
      return Shape.UNKNOWN;
    }
    return Shape.symbolic("(" + print(left) + operator + print(right) + ")");
  }

  private static String print(Dim dim) {
    if (dim instanceof Known known) {
      return Long.toString(known.value());
    }
    return ((Symbolic) dim).name();
  }

  /**
   * Whether two dims are certainly equal (false when either is unknown). Symbolic dims compare by their
   * canonical monomial, so "heads*batch" equals "batch*heads".
   */
  public static boolean certainlyEqual(Dim left, Dim right) {
    if (isUnknown(left) || isUnknown(right)) {
      return false;
    }
    Monomial a = Monomial.of(left);
    Monomial b = Monomial.of(right);
    return a.toDim().equals(b.toDim());
  }

  /** The canonical form of a dim (monomials re-printed in sorted order). */
  public static Dim canonical(Dim dim) {
    Monomial monomial = Monomial.of(dim);
    return monomial == null ? dim : monomial.toDim();
  }
}
