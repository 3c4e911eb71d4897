package dev.kiln.exporter;

import dev.kiln.common.KilnException;
import dev.kiln.exporter.archive.PickleObjects;
import dev.kiln.exporter.archive.TorchArchive;
import dev.kiln.exporter.code.ClassDef;
import dev.kiln.exporter.code.CodeParser;
import dev.kiln.exporter.code.Method;
import dev.kiln.exporter.lowering.BakedConstants;
import dev.kiln.exporter.lowering.CommonSubexpressions;
import dev.kiln.exporter.lowering.Emitter;
import dev.kiln.exporter.lowering.Interpreter;
import dev.kiln.exporter.lowering.LoweringException;
import dev.kiln.exporter.lowering.ModuleRef;
import dev.kiln.exporter.lowering.TensorValue;
import dev.kiln.exporter.lowering.Values;
import dev.kiln.graph.Attribute;
import dev.kiln.graph.DataType;
import dev.kiln.graph.Graph;
import dev.kiln.graph.Model;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Value;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * TorchScript ({@code torch.jit.trace} + save) to ONNX, in Java: the archive is read through the safe unpickler,
 * the traced code is interpreted symbolically, each aten op lowered to ONNX nodes. Weights are never read: the
 * initializers point into the .pt file and the writer streams them into the output.
 */
public final class TorchScriptExporter {
  public static final int DEFAULT_OPSET = 17;
  public static final int MIN_OPSET = 14;
  public static final int MAX_OPSET = 17;

  private TorchScriptExporter() {}

  public static ExportResult export(Path archiveFile, String kind, int opset) {
    return export(archiveFile, kind, opset, Map.of());
  }

  /**
   * Exports with the input shapes the module was traced at, when known ({@code sample -> [1, 4, 64, 64]}): integer
   * constants used as sizes that equal a dynamic dim at that shape are reported as baked constants.
   */
  public static ExportResult export(Path archiveFile, String kind, int opset, Map<String, long[]> tracedShapes) {
    if (opset < MIN_OPSET || opset > MAX_OPSET) {
      throw new KilnException.BadInput("--opset " + opset + " is not supported (expected " + MIN_OPSET + " to " + MAX_OPSET + ")");
    }
    TorchArchive archive = TorchArchive.open(archiveFile);
    Map<String, ClassDef> classes = CodeParser.parse(archive.code());
    ComponentSpec spec = ComponentSpec.of(kind);
    String rootClass = archive.root().className();
    ClassDef definition = classes.get(rootClass);
    if (definition == null || !definition.methods().containsKey("forward")) {
      throw new KilnException.BadInput(archiveFile + ": no forward method for the root module " + rootClass);
    }
    Method forward = definition.methods().get("forward");
    Graph graph = new Graph(rootName(rootClass));
    Map<String, Integer> ranks = new java.util.HashMap<>();
    List<ComponentSpec.Io> inputs = new ArrayList<>();
    List<BakedConstants.TracedDim> tracedDims = new ArrayList<>();
    List<ComponentSpec.Io> specInputs = spec.inputs(forward.parameters().subList(1, forward.parameters().size()));
    for (ComponentSpec.Io specInput : specInputs) {
      ComponentSpec.Io io = specInput;
      long[] traced = tracedShapes.get(io.name());
      if (traced != null) {
        if (rankOf(io, ranks) >= 0 && traced.length != rankOf(io, ranks)) {
          throw new KilnException.BadInput("--traced-shape " + io.name() + " has " + traced.length + " dims; the input has " + rankOf(io, ranks));
        }
        Map<Integer, String> dims = new java.util.TreeMap<>(io.dims());
        for (int axis = 0; axis < traced.length; axis++) {
          if (io.dims().isEmpty()) {
            dims.put(axis, io.name() + "_dim" + axis);
          }
          if (dims.containsKey(axis)) {
            tracedDims.add(new BakedConstants.TracedDim(io.name(), axis, traced[axis]));
          }
        }
        io = new ComponentSpec.Io(io.name(), io.onnxType(), io.torchType(), dims);
        ranks.put(io.name(), traced.length);
      }
      inputs.add(io);
    }
    for (String name : tracedShapes.keySet()) {
      if (inputs.stream().noneMatch(io -> io.name().equals(name))) {
        throw new KilnException.BadInput("--traced-shape names input '" + name + "'; the inputs are "
            + String.join(", ", inputs.stream().map(ComponentSpec.Io::name).toList()));
      }
    }
    Emitter emitter = new Emitter(graph, opset, new BakedConstants(tracedDims, tracedShapes));
    List<Object> arguments = new ArrayList<>();
    for (ComponentSpec.Io io : inputs) {
      int rank = rankOf(io, ranks);
      Value input = graph.addInput(emitter.reserveName(io.name()), io.onnxType(), shape(io.dims(), rank));
      TensorValue tensor = TensorValue.of(input, io.onnxType(), rank);
      if (io.torchType() != io.onnxType()) {
        tensor = TensorValue.of(emitter.op(Onnx.CAST, List.of(input), Attribute.ofInt("to", io.torchType().number())), io.torchType(), rank);
      }
      arguments.add(tensor);
    }
    Interpreter interpreter = new Interpreter(archive, classes, emitter);
    Object result = interpreter.call(new ModuleRef(archive.root(), "", List.of()), "forward", arguments);
    List<TensorValue> outputs = new ArrayList<>();
    try {
      flatten(result, outputs, emitter);
    } catch (LoweringException e) {
      throw new KilnException.Unsupported("unsupported: the root module's forward returns " + e.getMessage() + " (" + forward.file() + ")");
    }
    List<DataType> types = outputs.stream().map(TensorValue::dataType).toList();
    List<ComponentSpec.Io> outputSpecs = spec.outputs(outputs.size(), types);
    for (int index = 0; index < outputs.size(); index++) {
      TensorValue output = outputs.get(index);
      ComponentSpec.Io io = outputSpecs.get(index);
      Value value = output.value(emitter);
      // A graph output must be a node's own output under its final name: inputs, initializers and values
      // already named as outputs go through an Identity.
      if (value.producer() == null || value.isGraphOutput() || graph.outputs().contains(value)) {
        value = emitter.op(Onnx.IDENTITY, value);
      }
      value.setName(io.name());
      value.setType(output.dataType(), shape(io.dims(), output.rankOrUnknown()));
      graph.addOutput(value);
    }
    CommonSubexpressions.merge(graph);
    // Weights read only to be re-laid out (a linear weight's transposed copy) are dropped: nothing uses them.
    for (Value initializer : new ArrayList<>(graph.initializers())) {
      if (!initializer.hasUses() && !initializer.isGraphOutput()) {
        graph.removeInitializer(initializer);
      }
    }
    Model model = new Model(8, graph);
    model.setProducer("kiln", "0.1.0");
    model.opsetImports().put("", (long) opset);
    return new ExportResult(model, kind, interpreter.opCounts(), interpreter.warnings());
  }

  /** The traced shapes among {@code all} that name an input of this component (by its spec or traced names). */
  static Map<String, long[]> shapesFor(Path archiveFile, String kind, Map<String, long[]> all) {
    if (all.isEmpty()) {
      return all;
    }
    ComponentSpec spec = ComponentSpec.of(kind);
    Map<String, long[]> mine = new java.util.LinkedHashMap<>();
    for (Map.Entry<String, long[]> entry : all.entrySet()) {
      boolean known = spec.inputs().stream().anyMatch(io -> io.name().equals(entry.getKey())) || spec.inputs().isEmpty();
      if (known) {
        mine.put(entry.getKey(), entry.getValue());
      }
    }
    return mine;
  }

  /** The input's rank: from --traced-shape when given (generic modules have no other source), else the spec's. */
  private static int rankOf(ComponentSpec.Io io, Map<String, Integer> ranks) {
    Integer traced = ranks.get(io.name());
    if (traced != null) {
      return traced;
    }
    return switch (io.name()) {
      case "sample", "latent_sample", "controlnet_cond" -> 4;
      case "conditioning_scale" -> 0;
      case "input_ids", "text_embeds", "time_ids" -> 2;
      case "encoder_hidden_states" -> 3;
      case "timestep" -> 1;
      default -> io.name().startsWith(ComponentSpec.DOWN_RESIDUAL_INPUT) || io.name().equals(ComponentSpec.MID_RESIDUAL_INPUT) ? 4 : -1;
    };
  }

  private static Shape shape(Map<Integer, String> dims, int rank) {
    if (rank < 0) {
      return null;
    }
    List<Shape.Dim> list = new ArrayList<>();
    for (int axis = 0; axis < rank; axis++) {
      String name = dims.get(axis);
      list.add(name == null ? Shape.UNKNOWN : Shape.symbolic(name));
    }
    return Shape.of(list);
  }

  private static void flatten(Object result, List<TensorValue> outputs, Emitter emitter) {
    if (result instanceof PickleObjects.Tuple tuple) {
      for (Object item : tuple.items()) {
        flatten(item, outputs, emitter);
      }
    } else if (result instanceof List<?> list) {
      for (Object item : list) {
        flatten(item, outputs, emitter);
      }
    } else {
      outputs.add(Values.asTensor(result, emitter));
    }
  }

  private static String rootName(String className) {
    return className.substring(className.lastIndexOf('.') + 1);
  }
}
