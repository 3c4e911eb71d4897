package dev.kiln.optimizer.engine;

import dev.kiln.graph.Graph;
import dev.kiln.graph.GraphEditor;
import dev.kiln.graph.Model;
import dev.kiln.graph.Node;
import dev.kiln.graph.OpType;
import dev.kiln.graph.Use;
import dev.kiln.graph.Value;
import dev.kiln.graph.infer.ShapeInference;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;

/**
 * The only code that mutates a graph during optimization. It sweeps the rules in order over the main graph,
 * greedily rewriting every site whose check passes, until a sweep changes nothing (or the iteration cap).
 * Per site it inserts the rule's new nodes where their inputs are available, re-points the replaced values,
 * removes nodes that became dead and initializers nothing uses, adds opset imports for new domains, and
 * counts. Shape inference runs once; rewrites preserve the values they replace, so earlier facts stay true,
 * and facts about new values are inferred on demand.
 */
public final class RewriteDriver {
  /** Version imported for each contrib domain a rule may emit. */
  private static final Map<String, Long> DOMAIN_VERSIONS = Map.of(OpType.MICROSOFT_DOMAIN, 1L);

  private final List<Rule> rules;
  private final int maxIterations;
  private final Consumer<Graph> verifier;

  /**
   * @param maxIterations sweeps at most; a rule set that keeps changing the graph is a bug, and the cap stops it
   * @param verifier run on the graph after every sweep (tests pass the IR's verifier), or null
   */
  public RewriteDriver(List<Rule> rules, int maxIterations, Consumer<Graph> verifier) {
    this.rules = List.copyOf(rules);
    this.maxIterations = maxIterations;
    this.verifier = verifier;
  }

  public RewriteDriver(List<Rule> rules) {
    this(rules, 16, null);
  }

  public DriverReport run(Model model) {
    Graph graph = model.graph();
    GraphEditor editor = new GraphEditor(graph);
    ShapeInference shapes = ShapeInference.of(model);
    List<Pattern> patterns = new ArrayList<>();
    List<RuleStats> stats = new ArrayList<>();
    for (Rule rule : rules) {
      patterns.add(rule.pattern(new PatternBuilder()));
      stats.add(new RuleStats(rule.name()));
    }
    int iteration = 0;
    boolean changed = true;
    while (changed && iteration < maxIterations) {
      changed = false;
      iteration++;
      for (int r = 0; r < rules.size(); r++) {
        stats.get(r).clearRejections();
        changed |= sweep(model, rules.get(r), patterns.get(r), stats.get(r), editor, shapes);
      }
      removeUnusedInitializers(graph);
      if (verifier != null) {
        verifier.accept(graph);
      }
    }
    return new DriverReport(stats, iteration, !changed);
  }

  private boolean sweep(Model model, Rule rule, Pattern pattern, RuleStats stats, GraphEditor editor, ShapeInference shapes) {
    Graph graph = model.graph();
    boolean changed = false;
    for (Node node : new ArrayList<>(graph.nodes())) {
      if (node.graph() != graph) {
        continue;
      }
      Match match = Matcher.match(pattern, node, model, shapes, edge -> stats.nearMiss(edge, node.name()));
      if (match == null) {
        continue;
      }
      String structural = escapes(match);
      if (structural != null) {
        stats.reject(structural);
        continue;
      }
      Check check;
      try {
        check = rule.check(match);
      } catch (RuntimeException e) {
        throw new IllegalStateException("rule " + rule.name() + " failed checking " + node + ": " + e.getMessage(), e);
      }
      if (!check.passed()) {
        stats.reject(check.reason());
        continue;
      }
      Builder builder = new Builder(editor, scopeOf(match));
      Value result = rule.rewrite(match, builder);
      Map<Value, Value> replacements = new java.util.LinkedHashMap<>();
      replacements.put(matchedRootValue(match), result);
      replacements.putAll(builder.replacements);
      String failure = splice(model, match, builder, replacements, editor);
      if (failure != null) {
        stats.reject(failure);
        continue;
      }
      stats.countApplied();
      changed = true;
    }
    removeDeadNodes(graph);
    return changed;
  }

  /** The root output the pattern matched: the output some pattern op was matched against. */
  private static Value matchedRootValue(Match match) {
    Node root = match.root();
    for (Value output : root.outputs()) {
      if (output != null && output.consumerCount() > 0) {
        return output;
      }
    }
    return root.output(0);
  }

  /** Why the site cannot be replaced as a whole: an intermediate value that something outside the site uses. */
  private static String escapes(Match match) {
    Set<Node> inside = Collections.newSetFromMap(new IdentityHashMap<>());
    inside.addAll(match.nodes());
    for (Node node : match.nodes()) {
      if (node == match.root() || match.mayEscape(node)) {
        continue;
      }
      for (Value output : node.outputs()) {
        if (output == null) {
          continue;
        }
        if (output.isGraphOutput()) {
          return "intermediate " + node.opType().name() + " output is a graph output";
        }
        for (Use use : output.uses()) {
          if (!inside.contains(use.node())) {
            return "intermediate " + node.opType().name() + " output has a user outside the pattern ("
                + use.node().opType().name() + ")";
          }
        }
      }
    }
    int used = 0;
    for (Value output : match.root().outputs()) {
      if (output != null && output.consumerCount() > 0) {
        used++;
      }
    }
    if (used > 1) {
      return "root " + match.root().opType().name() + " has more than one used output";
    }
    return null;
  }

  /** Common '/'-scope of the matched nodes' names, e.g. "/down_blocks.0/attentions.0/transformer_blocks.0/attn1/". */
  static String scopeOf(Match match) {
    String common = null;
    for (Node node : match.nodes()) {
      String name = node.name();
      int slash = name.lastIndexOf('/');
      String scope = slash < 0 ? "" : name.substring(0, slash + 1);
      if (common == null) {
        common = scope;
      } else {
        int length = 0;
        int limit = Math.min(common.length(), scope.length());
        while (length < limit && common.charAt(length) == scope.charAt(length)) {
          length++;
        }
        common = common.substring(0, length);
        int cut = common.lastIndexOf('/');
        common = cut < 0 ? "" : common.substring(0, cut + 1);
      }
    }
    return common == null ? "" : common;
  }

  private static String splice(Model model, Match match, Builder builder, Map<Value, Value> replacements,
      GraphEditor editor) {
    Graph graph = model.graph();
    List<Node> order = graph.nodes();
    Map<Node, Integer> position = new IdentityHashMap<>();
    for (int i = 0; i < order.size(); i++) {
      position.put(order.get(i), i);
    }
    Set<Node> inside = Collections.newSetFromMap(new IdentityHashMap<>());
    inside.addAll(match.nodes());
    Set<Node> fresh = Collections.newSetFromMap(new IdentityHashMap<>());
    fresh.addAll(builder.nodes);
    // New nodes go right after the last producer of anything they read, the earliest place they are valid.
    int insertAt = 0;
    for (Node node : builder.nodes) {
      for (Value input : node.inputs()) {
        if (input != null && input.producer() != null && !fresh.contains(input.producer())) {
          Integer at = position.get(input.producer());
          if (at == null) {
            return "rewrite reads a value from outside the graph";
          }
          insertAt = Math.max(insertAt, at + 1);
        }
      }
    }
    for (Map.Entry<Value, Value> replacement : replacements.entrySet()) {
      Value original = replacement.getKey();
      Value with = replacement.getValue();
      if (with.producer() != null && !fresh.contains(with.producer())) {
        insertAt = Math.max(insertAt, position.getOrDefault(with.producer(), -1) + 1);
      }
      for (Use use : original.uses()) {
        // A read inside an If/Loop body is a read by the body's enclosing node in this graph.
        Node user = enclosingNodeIn(graph, use.node());
        if (!inside.contains(user) && position.get(user) < insertAt) {
          return "a user of a replaced value comes before the replacement's inputs";
        }
      }
      if (original.isGraphOutput() && !builder.created.containsKey(with)
          && (with.isGraphInput() || with.isGraphOutput() || with.isInitializer())) {
        return "graph output '" + original.name() + "' would become the graph input or initializer '" + with.name() + "'";
      }
    }
    Node anchor = insertAt < order.size() ? order.get(insertAt) : null;
    builder.initializers.forEach(graph::addInitializer);
    for (Node node : builder.nodes) {
      editor.insertBefore(anchor, node);
    }
    // The model's interface keeps its output names: a replacement takes the name over.
    replacements.forEach(editor::replaceKeepingInterface);
    for (String domain : builder.domains) {
      if (!domain.isEmpty() && model.opsetVersion(domain) == 0) {
        model.opsetImports().put(domain, DOMAIN_VERSIONS.getOrDefault(domain, 1L));
      }
    }
    List<Node> matched = new ArrayList<>(match.nodes());
    matched.sort((a, b) -> Integer.compare(position.get(b), position.get(a)));
    for (Node node : matched) {
      if (node.graph() == graph && unused(node)) {
        graph.remove(node);
      }
    }
    return null;
  }

  /** {@code node} itself when it sits in {@code graph}, else the node of {@code graph} whose subgraph holds it. */
  private static Node enclosingNodeIn(Graph graph, Node node) {
    Node enclosing = node;
    while (enclosing.graph() != graph) {
      enclosing = enclosing.graph().ownerNode();
    }
    return enclosing;
  }

  private static boolean unused(Node node) {
    for (Value output : node.outputs()) {
      if (output != null && output.consumerCount() > 0) {
        return false;
      }
    }
    return true;
  }

  /** Removes every node none of whose outputs is needed, last to first so chains go in one pass. */
  public static int removeDeadNodes(Graph graph) {
    List<Node> nodes = new ArrayList<>(graph.nodes());
    int removed = 0;
    for (int i = nodes.size() - 1; i >= 0; i--) {
      Node node = nodes.get(i);
      if (unused(node)) {
        graph.remove(node);
        removed++;
      }
    }
    return removed;
  }

  /** Drops initializers no node, subgraph or graph output uses (graph inputs with defaults stay). */
  public static int removeUnusedInitializers(Graph graph) {
    int removed = 0;
    for (Value initializer : new ArrayList<>(graph.initializers())) {
      if (initializer.consumerCount() == 0 && !initializer.isGraphInput()) {
        graph.removeInitializer(initializer);
        removed++;
      }
    }
    return removed;
  }
}
