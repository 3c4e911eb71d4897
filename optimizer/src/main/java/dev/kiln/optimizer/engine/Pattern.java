package dev.kiln.optimizer.engine;

import dev.kiln.graph.OpType;
import java.util.List;
import java.util.Set;

/**
 * A piece of a pattern: what a value in the graph must look like. Patterns are made by a
 * {@link PatternBuilder} and matched by the engine; the same pattern object used twice in one pattern means
 * "the same node" (or, for a named input, the same value), which is how a pattern says that the centered
 * input of a LayerNorm feeds both the variance and the division.
 */
public sealed interface Pattern permits Pattern.Op, Pattern.Any, Pattern.Constant, Pattern.AnyOf, Pattern.OptionalCast {

  /** Any value at all, bound to {@code name} (same name twice = same value). */
  record Any(String name) implements Pattern {}

  /** A value with constant data (an initializer that is not a graph input, or a Constant node's output). */
  record Constant(String name, Double requiredScalar) implements Pattern {}

  /** One of several alternatives, tried in order. */
  record AnyOf(List<Pattern> alternatives) implements Pattern {}

  /** The inner pattern, either directly or behind one Cast node. */
  record OptionalCast(Pattern inner) implements Pattern {}

  /** A node of one of {@code types} producing the value at {@code outputIndex}, with these inputs. */
  final class Op implements Pattern {
    final Set<OpType> types;
    final List<Pattern> inputs;
    String name;
    boolean commutative;
    boolean mayEscape;
    boolean trailingInputsAllowed;
    int outputIndex;

    Op(Set<OpType> types, List<Pattern> inputs, boolean commutative) {
      this.types = types;
      this.inputs = inputs;
      this.commutative = commutative;
    }

    /** Binds the matched node to {@code name} ({@link Match#node}). */
    public Op as(String name) {
      this.name = name;
      return this;
    }

    /** Binds the matched node to {@code key} ({@link Match#node(NodeKey)}). */
    public Op as(NodeKey key) {
      return as(key.name());
    }

    /** Lets this node's outputs have users outside the pattern (they are then not removed, or the rule replaces them). */
    public Op mayEscape() {
      this.mayEscape = true;
      return this;
    }

    /** Matches the operands in the given order only, even for a commutative op. */
    public Op ordered() {
      this.commutative = false;
      return this;
    }

    /** Accepts nodes with more inputs than the pattern lists (optional trailing inputs the rule inspects itself). */
    public Op withTrailingInputs() {
      this.trailingInputsAllowed = true;
      return this;
    }

    /** Matches output {@code index} of the node instead of output 0. */
    public Op output(int index) {
      this.outputIndex = index;
      return this;
    }

    public String name() {
      return name;
    }

    @Override
    public String toString() {
      return "Op" + types + (name == null ? "" : " as " + name);
    }
  }
}
