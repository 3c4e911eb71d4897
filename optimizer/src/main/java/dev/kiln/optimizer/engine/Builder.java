package dev.kiln.optimizer.engine;

import dev.kiln.graph.Attribute;
import dev.kiln.graph.GraphEditor;
import dev.kiln.graph.Node;
import dev.kiln.graph.OpType;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * What a rule uses to describe its replacement. Nodes are created detached and named after the site's scope
 * ({@code /down_blocks.0/attentions.0/transformer_blocks.0/attn1/MultiHeadAttention}); the driver inserts them.
 * New weights are staged the same way: the driver adds them to the graph only when the splice succeeds, so an
 * abandoned rewrite leaves nothing behind.
 */
public final class Builder {
  private final GraphEditor editor;
  private final String scope;
  final List<Node> nodes = new ArrayList<>();
  final List<Value> initializers = new ArrayList<>();
  final Map<Value, Value> replacements = new LinkedHashMap<>();
  final Set<String> domains = new LinkedHashSet<>();
  final Map<Value, Boolean> created = new IdentityHashMap<>();

  Builder(GraphEditor editor, String scope) {
    this.editor = editor;
    this.scope = scope;
  }

  /** The scope new nodes are named in, ending in '/' (or empty when the site had no scoped names). */
  public String scope() {
    return scope;
  }

  /** A single-output node of {@code type}; a null input is an omitted optional input. */
  public Value op(OpType type, List<Value> inputs, Attribute... attributes) {
    return ops(type, 1, inputs, attributes).get(0);
  }

  public Value op(OpType type, Value input, Attribute... attributes) {
    return op(type, Arrays.asList(input), attributes);
  }

  /** A node of {@code type} with {@code outputCount} outputs. */
  public List<Value> ops(OpType type, int outputCount, List<Value> inputs, Attribute... attributes) {
    return add(editor.newNode(type, scope + type.name(), inputs, outputCount, attributes));
  }

  /** A node whose outputs are present where {@code present} is true and omitted (null) elsewhere. */
  public List<Value> ops(OpType type, boolean[] present, List<Value> inputs, Attribute... attributes) {
    return add(editor.newNode(type, scope + type.name(), inputs, present, attributes));
  }

  private List<Value> add(Node node) {
    nodes.add(node);
    domains.add(node.opType().domain());
    for (Value output : node.outputs()) {
      if (output != null) {
        created.put(output, true);
      }
    }
    return node.outputs();
  }

  /** A new initializer named {@code scope + hint}, staged until the driver splices the rewrite in. */
  public Value initializer(String hint, Tensor tensor) {
    Value staged = editor.newInitializer(scope + hint, tensor);
    initializers.add(staged);
    return staged;
  }

  /** A new int64 vector initializer (shapes, axes). */
  public Value longs(String hint, long... values) {
    return initializer(hint, Tensor.ofLongs(new long[] {values.length}, values));
  }

  /** Also replaces {@code original} (another output of the site) by {@code replacement}. */
  public void replace(Value original, Value replacement) {
    replacements.put(original, replacement);
  }
}
