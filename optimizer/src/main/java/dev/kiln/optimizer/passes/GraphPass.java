package dev.kiln.optimizer.passes;

import dev.kiln.graph.Model;

/** A whole-graph transformation that is not a local pattern (common subexpressions, folding). Returns changes made. */
public interface GraphPass {
  String name();

  int run(Model model);
}
