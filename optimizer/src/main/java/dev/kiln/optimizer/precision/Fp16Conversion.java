package dev.kiln.optimizer.precision;

import dev.kiln.common.KilnException;
import dev.kiln.common.Printable;
import dev.kiln.graph.Attribute;
import dev.kiln.graph.DataType;
import dev.kiln.graph.Graph;
import dev.kiln.graph.GraphEditor;
import dev.kiln.graph.Model;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.OpType;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Use;
import dev.kiln.graph.Value;
import dev.kiln.graph.infer.ShapeInference;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * Converts a float32 graph to float16, node by node: every node that computes in float becomes float16 unless it is
 * kept float32 (blocked by op or name, chosen by the mixed-precision search, or unable to change type). Values
 * cross precision boundaries through one shared Cast per value and direction; initializers read only by float16
 * nodes are converted in place (lazily, see {@link HalfTensors}), those read by both get a float16 copy. Run after
 * fusion: the fusions match float32 graphs.
 */
public final class Fp16Conversion {
  private Fp16Conversion() {}

  /**
   * @param keepIoTypes graph inputs and outputs stay float32 (a Cast at the boundary), so the converted model is a
   *     drop-in for its float32 callers
   * @param blockOps op keys ({@code Resize}, {@code com.microsoft:GroupNorm}) kept float32
   * @param blockNodes node names kept float32; each must name a node
   */
  public record Options(boolean keepIoTypes, Set<String> blockOps, Set<String> blockNodes) {
    public Options {
      blockOps = Set.copyOf(blockOps);
      blockNodes = Set.copyOf(blockNodes);
    }

    public static Options defaults() {
      return new Options(true, Set.of(), Set.of());
    }
  }

  /** Ops whose float output type is fixed by an attribute the conversion does not rewrite. */
  private static final Set<OpType> TYPE_BY_ATTRIBUTE = Set.of(Onnx.RANDOM_NORMAL, Onnx.RANDOM_NORMAL_LIKE,
      Onnx.RANDOM_UNIFORM, Onnx.RANDOM_UNIFORM_LIKE, Onnx.EYE_LIKE, Onnx.BERNOULLI, Onnx.MULTINOMIAL);

  /** Quantization boundaries: their float side belongs to the int8 scheme, which is left alone. */
  private static final Set<OpType> QUANTIZATION = Set.of(Onnx.QUANTIZE_LINEAR, Onnx.DEQUANTIZE_LINEAR,
      Onnx.DYNAMIC_QUANTIZE_LINEAR);

  /**
   * Converts {@code model} in place. {@code keep} maps nodes that must stay float32 to the reason (the mixed
   * search's decisions); the block lists of {@code options} add theirs.
   */
  public static PrecisionReport convert(Model model, Map<Node, String> keep, Options options) {
    Graph graph = model.graph();
    long opset = model.opsetVersion("");
    ShapeInference types = ShapeInference.of(model);
    List<String> notes = new ArrayList<>();
    for (String name : options.blockNodes()) {
      if (graph.findNode(name) == null) {
        throw new KilnException.BadInput("--block-node " + Printable.quoted(name) + ": no node of that name in the model");
      }
    }
    Map<String, Integer> untouched = new TreeMap<>();
    boolean anyFloat = false;
    boolean anyHalf = false;
    boolean floatInitializers = false;
    for (Value initializer : graph.initializers()) {
      DataType type = initializer.initializer().dataType();
      anyFloat |= type == DataType.FLOAT;
      floatInitializers |= type == DataType.FLOAT;
      anyHalf |= type == DataType.FLOAT16;
      if (type == DataType.BFLOAT16 || type == DataType.INT8 || type == DataType.UINT8) {
        untouched.merge(type.name(), 1, Integer::sum);
      }
    }
    Map<Node, String> float32 = new LinkedHashMap<>();
    List<Node> half = new ArrayList<>();
    for (Node node : graph.nodes()) {
      if (!computesInFloat(node, types)) {
        continue;
      }
      anyFloat = true;
      String reason = reasonToKeep(node, keep, options);
      if (reason != null) {
        float32.put(node, reason);
      } else {
        half.add(node);
      }
    }
    untouched.forEach((type, count) -> notes.add(count + " " + type + " initializer(s) left as they are"));
    if (!anyFloat) {
      if (anyHalf) {
        notes.add("the model is already float16: converted as is");
      }
      return PrecisionReport.of(graph, 0, float32, Map.of(), 0, 0, 0, notes);
    }
    if (anyHalf && !floatInitializers && float32.isEmpty() && interfaceCastsOnly(half, graph)) {
      // A float16 model with a float32 interface (what --keep-io-types makes): converting it again changes nothing.
      notes.add("the model is already float16 (float32 only at its interface Casts): converted as is");
      return PrecisionReport.of(graph, 0, float32, Map.of(), 0, 0, 0, notes);
    }
    // Constants and casts from integers follow their readers: float16 only when every reader takes float16 there.
    for (Node node : new ArrayList<>(half)) {
      if (isSource(node, types) && !readersAllHalf(node, half, opset)) {
        half.remove(node);
        float32.put(node, "read as float32");
      }
    }
    Set<Node> halfNodes = java.util.Collections.newSetFromMap(new IdentityHashMap<>());
    halfNodes.addAll(half);
    GraphEditor editor = new GraphEditor(graph);
    Boundary boundary = new Boundary(editor, graph);
    ClampCounts clamped = new ClampCounts();
    long bytesBefore = floatBytes(graph);
    // Outputs of float16 nodes become float16.
    Set<Value> halfValues = java.util.Collections.newSetFromMap(new IdentityHashMap<>());
    for (Node node : half) {
      retype(node);
      for (Value output : node.outputs()) {
        if (output != null && types.dataType(output) == DataType.FLOAT) {
          halfValues.add(output);
          if (output.dataType() != null) {
            output.setType(DataType.FLOAT16, output.shape());
          }
        }
      }
    }
    if (!options.keepIoTypes()) {
      for (Value input : graph.inputs()) {
        if (!input.isInitializer() && input.dataType() == DataType.FLOAT) {
          input.setType(DataType.FLOAT16, input.shape());
          halfValues.add(input);
        }
      }
    }
    // Initializers: in place when every float reader is float16, else a float16 copy beside the float32 one.
    Map<Value, Value> halfInitializers = new IdentityHashMap<>();
    for (Value initializer : new ArrayList<>(graph.initializers())) {
      if (initializer.initializer().dataType() != DataType.FLOAT || initializer.isGraphInput() || initializer.isGraphOutput()) {
        continue;
      }
      boolean halfReader = false;
      boolean floatReader = false;
      for (Use use : initializer.uses()) {
        boolean wantsHalf = halfNodes.contains(use.node()) && !AlwaysFloatInputs.required(use.node(), use.inputIndex(), opset);
        halfReader |= wantsHalf;
        floatReader |= !wantsHalf;
      }
      if (!halfReader) {
        continue;
      }
      // Converted (and its clamps counted) when the writer streams it: the report's counts are read after that.
      Tensor converted = HalfTensors.lazyHalf(initializer.initializer(), initializer.name(), clamped);
      if (!floatReader) {
        initializer.setInitializer(converted);
        initializer.setType(DataType.FLOAT16, initializer.shape());
        halfValues.add(initializer);
      } else {
        Value copy = editor.addInitializer(initializer.name() + "_fp16", converted);
        copy.setType(DataType.FLOAT16, initializer.shape());
        halfInitializers.put(initializer, copy);
      }
    }
    // Every read across a precision boundary goes through the value's shared Cast.
    for (Node node : new ArrayList<>(graph.nodes())) {
      boolean nodeHalf = halfNodes.contains(node);
      if (!nodeHalf && !float32.containsKey(node)) {
        continue;
      }
      for (int index = 0; index < node.inputCount(); index++) {
        Value input = node.input(index);
        if (input == null) {
          continue;
        }
        boolean isHalf = halfValues.contains(input);
        boolean isFloat = !isHalf && types.dataType(input) == DataType.FLOAT;
        boolean wantsHalf = nodeHalf && !AlwaysFloatInputs.required(node, index, opset);
        if (wantsHalf && isFloat) {
          Value copy = halfInitializers.get(input);
          node.setInput(index, copy != null ? copy : boundary.cast(input, DataType.FLOAT16));
        } else if (!wantsHalf && isHalf) {
          node.setInput(index, boundary.cast(input, DataType.FLOAT));
        }
      }
    }
    // Graph outputs keep their float32 interface behind a Cast that takes over the output's name.
    for (int index = 0; index < graph.outputs().size(); index++) {
      Value output = graph.outputs().get(index);
      if (!halfValues.contains(output)) {
        continue;
      }
      if (options.keepIoTypes()) {
        boundary.castOutput(index, output);
      } else {
        output.setType(DataType.FLOAT16, output.shape());
      }
    }
    int castsInserted = boundary.inserted();
    int castsRemoved = CastCleanup.run(model);
    removeUnusedInitializers(graph);
    return PrecisionReport.of(graph, half.size(), float32, clamped, castsInserted, castsRemoved,
        bytesBefore - floatBytes(graph), notes);
  }

  /** Whether {@code node} reads or writes a float32 tensor (Shape and Size read only the dims: any type will do). */
  static boolean computesInFloat(Node node, ShapeInference types) {
    if (node.is(Onnx.SHAPE) || node.is(Onnx.SIZE)) {
      return false;
    }
    for (Value input : node.inputs()) {
      if (input != null && types.dataType(input) == DataType.FLOAT) {
        return true;
      }
    }
    for (Value output : node.outputs()) {
      if (output != null && types.dataType(output) == DataType.FLOAT) {
        return true;
      }
    }
    return false;
  }

  /** Whether every float node is a Cast from a graph input to float16 or from float16 to a graph output. */
  private static boolean interfaceCastsOnly(List<Node> nodes, Graph graph) {
    for (Node node : nodes) {
      if (!node.is(Onnx.CAST) || node.input(0) == null || node.output() == null) {
        return false;
      }
      long to = node.intAttribute("to", 0);
      boolean inputCast = to == DataType.FLOAT16.number() && graph.inputs().contains(node.input(0));
      boolean outputCast = to == DataType.FLOAT.number() && node.output().isGraphOutput()
          && node.input(0).dataType() == DataType.FLOAT16;
      if (!inputCast && !outputCast) {
        return false;
      }
    }
    return true;
  }

  private static String reasonToKeep(Node node, Map<Node, String> keep, Options options) {
    if (keep.containsKey(node)) {
      return keep.get(node);
    }
    if (options.blockNodes().contains(node.name())) {
      return "--block-node";
    }
    if (options.blockOps().contains(node.opType().key()) || options.blockOps().contains(node.opType().name())
        && node.opType().isDefaultDomain()) {
      return "--block-op " + node.opType().key();
    }
    if (!node.subgraphs().isEmpty()) {
      return "control flow (its bodies are not converted)";
    }
    if (TYPE_BY_ATTRIBUTE.contains(node.opType())) {
      return "output type fixed by an attribute";
    }
    if (QUANTIZATION.contains(node.opType())) {
      return "quantization boundary (int8 left alone)";
    }
    if (node.is(Onnx.CAST) && node.intAttribute("to", 0) != DataType.FLOAT.number()) {
      // A Cast from float to an integer or another float type reads float16 as well as float32.
      return null;
    }
    return null;
  }

  /** Nodes that make float values out of nothing float: Constant, ConstantOfShape, Cast from a non-float. */
  private static boolean isSource(Node node, ShapeInference types) {
    if (node.is(Onnx.CONSTANT) || node.is(Onnx.CONSTANT_OF_SHAPE)) {
      return true;
    }
    return node.is(Onnx.CAST) && node.intAttribute("to", 0) == DataType.FLOAT.number()
        && types.dataType(node.input(0)) != DataType.FLOAT;
  }

  private static boolean readersAllHalf(Node node, List<Node> half, long opset) {
    for (Value output : node.outputs()) {
      if (output == null) {
        continue;
      }
      if (output.isGraphOutput()) {
        return false;
      }
      for (Use use : output.uses()) {
        if (!half.contains(use.node()) || AlwaysFloatInputs.required(use.node(), use.inputIndex(), opset)) {
          return false;
        }
      }
    }
    return true;
  }

  /** Rewrites the attributes that fix a float16 node's output type. */
  private static void retype(Node node) {
    if (node.is(Onnx.CAST) && node.intAttribute("to", 0) == DataType.FLOAT.number()) {
      node.setAttribute(Attribute.ofInt("to", DataType.FLOAT16.number()));
    }
    if ((node.is(Onnx.CONSTANT) || node.is(Onnx.CONSTANT_OF_SHAPE)) && node.attribute("value") != null
        && node.attribute("value").asTensor().dataType() == DataType.FLOAT) {
      node.setAttribute(Attribute.ofTensor("value", HalfTensors.half(node.attribute("value").asTensor())));
    }
  }

  private static long floatBytes(Graph graph) {
    long bytes = 0;
    for (Value initializer : graph.initializers()) {
      DataType type = initializer.initializer().dataType();
      if (type == DataType.FLOAT || type == DataType.FLOAT16) {
        bytes += initializer.initializer().byteSize();
      }
    }
    return bytes;
  }

  private static void removeUnusedInitializers(Graph graph) {
    for (Value initializer : new ArrayList<>(graph.initializers())) {
      if (!initializer.hasUses() && !initializer.isGraphOutput() && !initializer.isGraphInput()) {
        graph.removeInitializer(initializer);
      }
    }
  }

  /** One Cast per value and target type, placed right after the value is made. */
  private static final class Boundary {
    private final GraphEditor editor;
    private final Graph graph;
    private final Map<Value, Map<DataType, Value>> casts = new IdentityHashMap<>();
    private int inserted;

    Boundary(GraphEditor editor, Graph graph) {
      this.editor = editor;
      this.graph = graph;
    }

    Value cast(Value value, DataType to) {
      return casts.computeIfAbsent(value, key -> new java.util.EnumMap<>(DataType.class)).computeIfAbsent(to, key -> {
        Node cast = newCast(value, to, value.name() + (to == DataType.FLOAT16 ? "_to_fp16" : "_to_fp32"));
        Node producer = value.producer();
        if (producer == null) {
          editor.insertBefore(graph.nodes().isEmpty() ? null : graph.nodes().get(0), cast);
        } else {
          graph.insertAfter(producer, cast);
        }
        return cast.output();
      });
    }

    void castOutput(int index, Value output) {
      String name = output.name();
      Node cast = newCast(output, DataType.FLOAT, name + "_to_fp32");
      graph.insertAfter(output.producer(), cast);
      output.setName(editor.freshValueName(name + "_fp16"));
      output.setType(DataType.FLOAT16, output.shape());
      cast.output().setName(name);
      graph.setOutput(index, cast.output());
    }

    private Node newCast(Value value, DataType to, String base) {
      inserted++;
      Node cast = editor.newNode(Onnx.CAST, base, List.of(value), base, Attribute.ofInt("to", to.number()));
      cast.output().setType(to, value.shape());
      return cast;
    }

    int inserted() {
      return inserted;
    }
  }
}
