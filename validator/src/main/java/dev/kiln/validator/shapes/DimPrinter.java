package dev.kiln.validator.shapes;

import dev.kiln.graph.Shape;
import dev.kiln.graph.Shape.Dim;
import dev.kiln.graph.infer.DimArithmetic;
import java.util.ArrayList;
import java.util.List;
import java.util.StringJoiner;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Prints proof dims as the user thinks of them: the grid atom "height:8" (a height that is a multiple of 8,
 * divided by 8) becomes height/8, so "4*height:8" reads "height/2" and "16*height:8*width:8" "height*width/4".
 */
final class DimPrinter {
  private static final Pattern GRID_ATOM = Pattern.compile("([A-Za-z_][A-Za-z_0-9]*):(\\d+)");

  private DimPrinter() {}

  static String print(Dim dim) {
    if (dim instanceof Shape.Known known) {
      return Long.toString(known.value());
    }
    if (!(dim instanceof Shape.Symbolic symbolic)) {
      return "?";
    }
    DimArithmetic.Factors factors = DimArithmetic.factor(dim);
    if (factors == null) {
      return symbolic.name();
    }
    long numerator = factors.coefficient();
    long denominator = 1;
    List<String> names = new ArrayList<>();
    for (String atom : factors.atoms()) {
      Matcher grid = GRID_ATOM.matcher(atom);
      if (grid.matches()) {
        names.add(grid.group(1));
        denominator *= Long.parseLong(grid.group(2));
      } else {
        names.add(GRID_ATOM.matcher(atom).replaceAll("$1/$2"));
      }
    }
    long common = gcd(Math.abs(numerator), denominator);
    numerator /= common;
    denominator /= common;
    StringJoiner text = new StringJoiner("*");
    if (numerator != 1 || names.isEmpty()) {
      text.add(Long.toString(numerator));
    }
    names.forEach(text::add);
    return denominator == 1 ? text.toString() : text + "/" + denominator;
  }

  static String print(Shape shape) {
    if (shape == null) {
      return "(unknown rank)";
    }
    StringJoiner text = new StringJoiner(", ", "[", "]");
    for (Dim dim : shape.dims()) {
      text.add(print(dim));
    }
    return text.toString();
  }

  private static long gcd(long a, long b) {
    return b == 0 ? Math.max(a, 1) : gcd(b, a % b);
  }
}
