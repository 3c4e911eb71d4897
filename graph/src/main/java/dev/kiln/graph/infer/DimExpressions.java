package dev.kiln.graph.infer;

import dev.kiln.graph.Shape;
import dev.kiln.graph.Shape.Dim;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * Evaluates the symbolic dims {@link DimArithmetic} builds ("4*height", "((h+0-1)/2+1)") at given values of
 * their atoms. Division is ONNX integer division (floor), as in the shape computations the dims came from. A
 * dim whose text is not such an expression — an exporter's free-form dim_param with operator characters in it —
 * evaluates only when the whole name is bound.
 */
public final class DimExpressions {
  private DimExpressions() {}

  /** The value of {@code dim} with atoms bound by {@code atoms}; null when unknown or an atom is unbound. */
  public static Long evaluate(Dim dim, Map<String, Long> atoms) {
    if (dim instanceof Shape.Known known) {
      return known.value();
    }
    if (!(dim instanceof Shape.Symbolic symbolic)) {
      return null;
    }
    Long whole = atoms.get(symbolic.name());
    if (whole != null) {
      return whole;
    }
    try {
      Parser parser = new Parser(symbolic.name(), atoms);
      long value = parser.expression();
      return parser.position == parser.text.length() ? value : null;
    } catch (Unbound | ArithmeticException e) {
      return null;
    }
  }

  /** The atoms (names) an expression mentions, sorted. */
  public static Set<String> atoms(Dim dim) {
    Set<String> names = new TreeSet<>();
    if (dim instanceof Shape.Symbolic symbolic) {
      Parser parser = new Parser(symbolic.name(), null);
      parser.collect = names;
      try {
        parser.expression();
      } catch (Unbound | ArithmeticException e) {
        names.add(symbolic.name());
      }
    }
    return names;
  }

  private static final class Unbound extends RuntimeException {
    Unbound() {
      super(null, null, false, false);
    }
  }

  private static final class Parser {
    final String text;
    final Map<String, Long> atoms;
    Set<String> collect;
    int position;

    Parser(String text, Map<String, Long> atoms) {
      this.text = text;
      this.atoms = atoms;
    }

    long expression() {
      long value = term();
      while (position < text.length() && (peek() == '+' || peek() == '-')) {
        char operator = text.charAt(position++);
        long right = term();
        value = operator == '+' ? Math.addExact(value, right) : Math.subtractExact(value, right);
      }
      return value;
    }

    long term() {
      long value = factor();
      while (position < text.length() && (peek() == '*' || peek() == '/')) {
        char operator = text.charAt(position++);
        long right = factor();
        value = operator == '*' ? Math.multiplyExact(value, right) : Math.floorDiv(value, right);
      }
      return value;
    }

    long factor() {
      if (position >= text.length()) {
        throw new Unbound();
      }
      char c = peek();
      if (c == '(') {
        position++;
        long value = expression();
        if (position >= text.length() || peek() != ')') {
          throw new Unbound();
        }
        position++;
        return value;
      }
      if (c == '-') {
        position++;
        return -factor();
      }
      int start = position;
      while (position < text.length() && "()+-*/".indexOf(peek()) < 0) {
        position++;
      }
      String token = text.substring(start, position).strip();
      if (token.isEmpty()) {
        throw new Unbound();
      }
      if (token.chars().allMatch(Character::isDigit)) {
        return Long.parseLong(token);
      }
      if (collect != null) {
        collect.add(token);
        return 1;
      }
      Long value = atoms.get(token);
      if (value == null) {
        throw new Unbound();
      }
      return value;
    }

    char peek() {
      return text.charAt(position);
    }
  }
}
