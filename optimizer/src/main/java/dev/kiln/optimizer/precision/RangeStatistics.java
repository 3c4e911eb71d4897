package dev.kiln.optimizer.precision;

import dev.kiln.graph.Attribute;
import dev.kiln.graph.DataType;
import dev.kiln.graph.Graph;
import dev.kiln.graph.Model;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.OpType;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A {@link MixedPrecision.Range} per value computed inside the graph: scalar reductions placed right after each
 * measured value's producer, so one run gives every range and no intermediate leaves ORT (exposing a full-size
 * UNet's thousands of intermediates, attention scores included, cost gigabytes and a run per chunk of them).
 *
 * <p>Per value {@code x}: {@code ReduceMax(|x|)}; {@code ReduceMin(Where(|x| > 0, |x|, +inf))}, the smallest non-zero
 * magnitude (+inf when there is none, as {@link MixedPrecision.Range} starts); {@code ReduceSum(|x|)}, finite exactly
 * when every element is; and, where a rule reads it, {@code Size(x)} (a ReduceMean's input and output: the
 * accumulation rule's element counts; elsewhere {@code elements} stays 0, read by nothing). Max and min are exact in
 * float32, so a range is what {@link MixedPrecision.Range#add} gives on the exposed array. A value with a non-finite
 * element needs Range's finite-only max and min and its exact count: {@link #ranges} names those, and the caller
 * measures them the exposed way.
 */
final class RangeStatistics {

  /** Per measured value, its outputs: max |x|, min non-zero |x|, Σ|x|, and Size(x) where counted (else null). */
  private final Map<String, String[]> outputs = new LinkedHashMap<>();

  private RangeStatistics() {}

  /**
   * Appends the reductions of {@code values} (float node outputs of {@code model}), each a scalar graph output. ORT's
   * session set-up costs milliseconds per added node on a full-size UNet, so each value costs six: |x|, its max, the
   * non-zero mask, the masked values and their min, the sum; the element count (Size) only where a rule reads it
   * ({@code counted}). Measured on the full-size UNet's 1,737 float values: six nodes and three outputs a value set
   * up in 11 s and ran in 2.5 s; the same statistics gathered into one output (a Reshape to a vector per value and a
   * Concat) took 17 s and 4.8 s.
   *
   * <p>Order. ORT runs the nodes in the order of a depth-first walk back from the graph's leaves (here the
   * statistics), starting from the LAST leaf of the node list. Reductions placed after their values in graph order
   * would make it run the whole graph for the last value's statistics first, every other value kept alive for its
   * own reductions at the end (the full-size UNet passed 9 GB). So the reductions go at the end of the node list in
   * reverse value order: the walk then starts at the first value's reductions, runs the graph up to that value, reduces
   * it, moves on to the second, and ORT frees each value (and its |x|) once its readers and reductions are done.
   *
   * @param counted the values whose element count is measured (a ReduceMean's input and output)
   */
  static RangeStatistics append(Model model, List<Value> values, Set<String> counted) {
    RangeStatistics statistics = new RangeStatistics();
    Graph graph = model.graph();
    Value zero = scalar(graph, "kiln_range/zero", Tensor.ofFloats(new long[0], 0f));
    Value infinity = scalar(graph, "kiln_range/infinity", Tensor.ofFloats(new long[0], Float.POSITIVE_INFINITY));
    List<List<Node>> groups = new ArrayList<>();
    int index = 0;
    for (Value value : values) {
      String base = "kiln_range/" + index++;
      Node absolute = node(Onnx.ABS, base + "/abs", List.of(value), base + "/abs");
      Node max = node(Onnx.REDUCE_MAX, base + "/max", List.of(absolute.output()), base + "/max");
      Node positive = node(Onnx.GREATER, base + "/positive", List.of(absolute.output(), zero), base + "/positive");
      positive.output().setType(DataType.BOOL, null);
      Node nonZero = node(Onnx.WHERE, base + "/non_zero", List.of(positive.output(), absolute.output(), infinity),
          base + "/non_zero");
      Node min = node(Onnx.REDUCE_MIN, base + "/min", List.of(nonZero.output()), base + "/min");
      // Σ|x| is finite when every element is (NaN and ±Inf make it NaN or Inf; a sum keeps NaN, where a max may drop
      // it). A finite tensor whose magnitudes sum past float32's range reads as non-finite too: it is then measured
      // exactly the exposed way, which costs time, never accuracy.
      Node sum = node(Onnx.REDUCE_SUM, base + "/sum", List.of(absolute.output()), base + "/sum");
      List<Node> nodes = new ArrayList<>(List.of(absolute, max, positive, nonZero, min, sum));
      String[] names = new String[4];
      int kind = 0;
      for (Node reduction : List.of(max, min, sum)) {
        reduction.setAttribute(Attribute.ofInt("keepdims", 0));
        reduction.output().setType(DataType.FLOAT, Shape.of(new long[0]));
        graph.addOutput(reduction.output());
        names[kind++] = reduction.output().name();
      }
      if (counted.contains(value.name())) {
        Node size = node(Onnx.SIZE, base + "/size", List.of(value), base + "/size");
        size.output().setType(DataType.INT64, Shape.of(new long[0]));
        nodes.add(size);
        graph.addOutput(size.output());
        names[3] = size.output().name();
      }
      groups.add(nodes);
      statistics.outputs.put(value.name(), names);
    }
    for (int group = groups.size() - 1; group >= 0; group--) {
      groups.get(group).forEach(graph::append);
    }
    return statistics;
  }

  private static Value scalar(Graph graph, String name, Tensor tensor) {
    Value value = graph.addInitializer(graph.uniqueName(name), tensor);
    value.setType(DataType.FLOAT, Shape.of(new long[0]));
    return value;
  }

  private static Node node(OpType op, String name, List<Value> inputs, String output) {
    Node node = Node.create(op, name, inputs, output);
    node.output().setType(DataType.FLOAT, null);
    return node;
  }

  /** The outputs to fetch. */
  Set<String> outputNames() {
    Set<String> names = new LinkedHashSet<>();
    for (String[] four : outputs.values()) {
      for (String name : four) {
        if (name != null) {
          names.add(name);
        }
      }
    }
    return names;
  }

  /**
   * The ranges of one run ({@code fetched}: the outputs by name), for the values whose elements were all finite; the
   * others' names go to {@code nonFinite}.
   */
  Map<String, MixedPrecision.Range> ranges(Map<String, double[]> fetched, Set<String> nonFinite) {
    Map<String, MixedPrecision.Range> ranges = new LinkedHashMap<>();
    outputs.forEach((name, four) -> {
      if (!Double.isFinite(fetched.get(four[2])[0])) {
        nonFinite.add(name);
        return;
      }
      MixedPrecision.Range range = new MixedPrecision.Range();
      range.maxAbs = fetched.get(four[0])[0];
      range.minNonZero = fetched.get(four[1])[0];
      range.elements = four[3] == null ? 0 : (long) fetched.get(four[3])[0];
      ranges.put(name, range);
    });
    return ranges;
  }
}
