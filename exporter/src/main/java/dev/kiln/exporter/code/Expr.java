package dev.kiln.exporter.code;

import java.util.List;

/** An expression of the traced-code subset. */
public sealed interface Expr {
  record Name(String identifier) implements Expr {}

  record Attribute(Expr target, String name) implements Expr {}

  record Keyword(String name, Expr value) {}

  record Call(Expr function, List<Expr> arguments, List<Keyword> keywords) implements Expr {}

  /** {@code Type[...]}: only in type expressions ({@code annotate(List[int], ...)}). */
  record Subscript(Expr target, List<Expr> indices) implements Expr {}

  record IntLiteral(long value) implements Expr {}

  record FloatLiteral(double value) implements Expr {}

  record StringLiteral(String value) implements Expr {}

  record BoolLiteral(boolean value) implements Expr {}

  record NoneLiteral() implements Expr {}

  record ListLiteral(List<Expr> items) implements Expr {}

  record TupleLiteral(List<Expr> items) implements Expr {}
}
