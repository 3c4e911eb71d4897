package dev.kiln.validator.lowering;

import dev.kiln.graph.Node;
import dev.kiln.graph.OpType;
import dev.kiln.graph.Value;
import java.util.List;

/**
 * The decomposition of one contrib operator into standard ONNX operators, written from the operator's
 * specification (inputs, attributes, layout), not from whatever pattern a fusion once matched.
 */
interface OpLowering {
  /** The operator this lowering replaces. */
  OpType op();

  /** Whether this particular node needs lowering (e.g. only the packed forms of an attention node). */
  default boolean applies(Node node, Emitter emitter) {
    return true;
  }

  /**
   * Emits the replacement through {@code emitter} and returns one value per output of {@code node}
   * (null where the node has no such output).
   */
  List<Value> lower(Node node, Emitter emitter);

  /** A required integer attribute, or an Unsupported failure that names it. */
  static long requiredInt(Node node, String attribute, Emitter emitter) {
    if (node.attribute(attribute) == null) {
      throw emitter.failure("it lacks the required attribute '" + attribute + "'");
    }
    return node.attribute(attribute).asLong();
  }
}
