package dev.kiln.exporter.code;

import java.util.List;

/** A statement of a traced method body; {@code line} is 1-based in its code file. */
public sealed interface Statement {
  int line();

  /** {@code name = value} or {@code a, b, = value} ({@code unpack}). */
  record Assign(List<String> targets, boolean unpack, Expr value, int line) implements Statement {}

  record Return(Expr value, int line) implements Statement {}
}
