package dev.kiln.optimizer.specialize;

import dev.kiln.common.KilnException;
import dev.kiln.common.Printable;
import dev.kiln.graph.Attribute;
import dev.kiln.graph.Graph;
import dev.kiln.graph.GraphEditor;
import dev.kiln.graph.Model;
import dev.kiln.graph.Node;
import dev.kiln.graph.Use;
import dev.kiln.graph.Value;
import dev.kiln.optimizer.engine.RewriteDriver;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Text-encoder output pruning ({@code --clip-skip N}, {@code --keep-output NAME}): keeps only the outputs the
 * runner reads and removes every node, initializer and input nothing else needs.
 *
 * <ul>
 *   <li>SD 1.x/2.x clip skip N (diffusers): {@code last_hidden_state} becomes the final LayerNorm applied to
 *       {@code hidden_states[-(N + 1)]} — the LayerNorm nodes between {@code hidden_states[-1]} and
 *       {@code last_hidden_state} are copied onto the earlier state — and is the only output;
 *   <li>SDXL clip skip N: {@code hidden_states[-(N + 2)]} (un-normed, the penultimate layer at 0) is kept as
 *       {@code last_hidden_state}, with encoder 2's projected pooled output {@code text_embeds} (encoder 1's
 *       pooler_output is never read, so its last layer goes too);
 *   <li>{@code --keep-output}: exactly the named outputs.
 * </ul>
 */
public final class OutputPruning {
  private OutputPruning() {}

  private static final Pattern HIDDEN_STATE = Pattern.compile("hidden_states\\.(\\d+)");

  /** What pruning removed. */
  public record Removed(int nodes, int initializers, long bytes, int inputs) {}

  /** Clip skip for an SD 1.x/2.x encoder ({@code xlStyle} false) or either SDXL encoder ({@code xlStyle} true). */
  public static Removed clipSkip(Model model, int clipSkip, boolean xlStyle, String label) {
    Graph graph = model.graph();
    TreeMap<Integer, Value> hidden = new TreeMap<>();
    Value last = null;
    Value pooled = null;
    for (Value output : graph.outputs()) {
      Matcher matcher = HIDDEN_STATE.matcher(output.name());
      if (matcher.matches() && matcher.group(1).length() <= 4) {
        hidden.put(Integer.parseInt(matcher.group(1)), output);
      } else if (output.name().equals("last_hidden_state")) {
        last = output;
      } else if (output.name().equals("text_embeds")) {
        // SDXL conditions on encoder 2's projected pooled output only; encoder 1's pooler_output is never read.
        pooled = output;
      }
    }
    if (last == null) {
      throw new KilnException.BadInput(label + ": --clip-skip needs a text encoder with a last_hidden_state output (outputs "
          + names(graph.outputs()) + ")");
    }
    if (clipSkip < 0) {
      throw new KilnException.BadInput(label + ": --clip-skip must be at least 0, got " + clipSkip);
    }
    int fromEnd = xlStyle ? clipSkip + 2 : clipSkip + 1;
    boolean needsHidden = xlStyle || clipSkip > 0;
    Value chosen = last;
    if (needsHidden) {
      if (hidden.isEmpty()) {
        throw new KilnException.BadInput(label + ": --clip-skip " + clipSkip + " needs the hidden_states.* outputs, which this "
            + "export lacks (re-export with output_hidden_states=True)");
      }
      int index = hidden.lastKey() + 1 - fromEnd;
      chosen = hidden.get(index);
      if (chosen == null) {
        throw new KilnException.BadInput(label + ": --clip-skip " + clipSkip + " asks for hidden_states." + index
            + ", which this export does not have (hidden states " + hidden.firstKey() + ".." + hidden.lastKey() + ")");
      }
    }
    GraphEditor editor = new GraphEditor(graph);
    Value kept = chosen;
    if (!xlStyle && clipSkip > 0) {
      kept = copyFinalNorm(editor, hidden.lastEntry().getValue(), last, chosen, label);
    }
    List<Value> outputs = new ArrayList<>();
    outputs.add(kept);
    if (xlStyle && pooled != null) {
      outputs.add(pooled);
    }
    Removed removed = keepOnly(model, editor, outputs);
    if (kept != last) {
      // The runner reads the conditioning under this name; the value it replaces is gone.
      kept.setName("last_hidden_state");
      kept.setType(last.dataType(), last.shape());
    }
    return removed;
  }

  /** Keeps exactly the named graph outputs (each must exist). */
  public static Removed keepOutputs(Model model, List<String> names, String label) {
    Graph graph = model.graph();
    List<Value> kept = new ArrayList<>();
    for (String name : names) {
      Value found = graph.outputs().stream().filter(output -> output.name().equals(name)).findFirst().orElse(null);
      if (found == null) {
        throw new KilnException.BadInput(label + ": --keep-output " + Printable.quoted(name) + " is not an output (outputs "
            + names(graph.outputs()) + ")");
      }
      if (!kept.contains(found)) {
        kept.add(found);
      }
    }
    return keepOnly(model, new GraphEditor(graph), kept);
  }

  private static Removed keepOnly(Model model, GraphEditor editor, List<Value> outputs) {
    Graph graph = model.graph();
    int nodes = graph.totalNodeCount();
    int initializers = graph.initializers().size();
    long bytes = initializerBytes(graph);
    int inputs = graph.inputs().size();
    Value last = graph.outputs().stream().filter(output -> output.name().equals("last_hidden_state")).findFirst().orElse(null);
    while (!graph.outputs().isEmpty()) {
      graph.removeOutput(graph.outputs().size() - 1);
    }
    if (last != null && !outputs.contains(last)) {
      // Frees the interface name for the kept state (the old value dies below, or lives on inside under a fresh name).
      last.setName(editor.freshValueName("last_hidden_state_replaced"));
    }
    outputs.forEach(graph::addOutput);
    RewriteDriver.removeDeadNodes(graph);
    RewriteDriver.removeUnusedInitializers(graph);
    for (Value input : new ArrayList<>(graph.inputs())) {
      if (!input.hasUses() && !input.isGraphOutput()) {
        graph.removeInput(input);
      }
    }
    return new Removed(nodes - graph.totalNodeCount(), initializers - graph.initializers().size(),
        bytes - initializerBytes(graph), inputs - graph.inputs().size());
  }

  /**
   * Copies the nodes that compute {@code normed} from {@code preNorm} (the final LayerNorm, fused or as exported)
   * onto {@code earlier}; returns the copy's output.
   */
  private static Value copyFinalNorm(GraphEditor editor, Value preNorm, Value normed, Value earlier, String label) {
    Graph graph = editor.graph();
    Set<Node> downstream = new HashSet<>();
    Deque<Value> work = new ArrayDeque<>(List.of(preNorm));
    while (!work.isEmpty()) {
      for (Use use : work.pop().uses()) {
        if (downstream.add(use.node())) {
          use.node().outputs().forEach(output -> {
            if (output != null) {
              work.push(output);
            }
          });
        }
      }
    }
    Set<Node> upstream = new HashSet<>();
    Deque<Node> back = new ArrayDeque<>();
    if (normed.producer() != null) {
      back.push(normed.producer());
    }
    while (!back.isEmpty()) {
      Node node = back.pop();
      if (upstream.add(node)) {
        for (Value input : node.inputs()) {
          if (input != null && input.producer() != null) {
            back.push(input.producer());
          }
        }
      }
    }
    Set<Node> chain = new LinkedHashSet<>();
    for (Node node : graph.nodes()) {
      if (downstream.contains(node) && upstream.contains(node)) {
        chain.add(node);
      }
    }
    if (chain.isEmpty() || chain.size() > 64) {
      throw new KilnException.BadInput(label + ": cannot find the final LayerNorm between hidden_states[-1] and "
          + "last_hidden_state (" + chain.size() + " nodes between them)");
    }
    Map<Value, Value> copies = new HashMap<>();
    copies.put(preNorm, earlier);
    for (Node node : chain) {
      List<Value> inputs = new ArrayList<>();
      for (Value input : node.inputs()) {
        inputs.add(input == null ? null : copies.getOrDefault(input, input));
      }
      boolean[] present = new boolean[node.outputCount()];
      for (int i = 0; i < present.length; i++) {
        present[i] = node.output(i) != null;
      }
      Node copy = editor.newNode(node.opType(), node.name() + "_clip_skip", inputs, present,
          node.attributes().toArray(new Attribute[0]));
      editor.insertBefore(null, copy);
      for (int i = 0; i < present.length; i++) {
        if (present[i]) {
          copies.put(node.output(i), copy.output(i));
        }
      }
    }
    return copies.get(normed);
  }

  private static long initializerBytes(Graph graph) {
    long bytes = 0;
    for (Value value : graph.initializers()) {
      bytes += value.initializer().byteSize();
    }
    return bytes;
  }

  private static List<String> names(List<Value> values) {
    return values.stream().map(value -> Printable.name(value.name())).toList();
  }
}
