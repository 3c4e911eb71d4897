package dev.kiln.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.bundle.BundleManifest;
import dev.kiln.common.Json;
import dev.kiln.common.KilnException;
import dev.kiln.common.Printable;
import dev.kiln.common.PipelineLayout;
import dev.kiln.graph.DataType;
import dev.kiln.graph.ExternalTensor;
import dev.kiln.graph.Graph;
import dev.kiln.graph.GraphPrinter;
import dev.kiln.graph.Model;
import dev.kiln.graph.ModelReader;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.nio.file.Files;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code kiln inspect}: what is in an ONNX model, or in each component of a diffusers/Optimum pipeline
 * folder — IR version, producer, opsets, typed inputs and outputs, op histogram, parameters and where the
 * weights live. Reads only the protobuf; external weights are never loaded.
 */
@Command(name = "inspect", mixinStandardHelpOptions = true,
    description = {"Summarize an ONNX model or every component of a pipeline folder (model_index.json + component subfolders).",
        "With --json: one object for a model (path, irVersion, producer, opsetImports, inputs, outputs, ops, nodeCount, "
            + "parameterCount, initializerBytes); for a pipeline folder one document {\"pipeline\": DIR, \"components\": [those objects]}.",
        "Names from the model are printed escaped (\\n, \\x1b, ...) in text; JSON escapes them itself."})
public final class InspectCommand implements Callable<Integer> {
  /** Compact and in insertion order, so keys come out in the documented order. */
  private static final ObjectMapper COMPACT = new ObjectMapper();

  @Spec CommandSpec spec;

  @Parameters(index = "0", paramLabel = "MODEL.onnx|PIPELINE_DIR", description = "An .onnx file or a pipeline folder.")
  Path target;

  @Mixin JsonOption json;

  @Option(names = "--graph", description = "Also print each graph in Kiln's stable text form (text mode only).")
  boolean graph;

  @Override
  public Integer call() {
    if (json.enabled() && graph) {
      throw new KilnException.BadInput("--graph prints text and cannot be combined with --json");
    }
    PrintWriter out = spec.commandLine().getOut();
    JsonNode bundle = Files.isDirectory(target) && BundleManifest.isBundle(target) ? BundleManifest.read(target) : null;
    if (bundle != null && !json.enabled()) {
      out.print(BundleSummary.text(bundle));
      out.println();
    }
    TorchScriptInput.refuse(target);
    List<Path> models = modelsOf(target);
    List<Map<String, Object>> summaries = new ArrayList<>();
    boolean first = true;
    for (Path modelFile : models) {
      Model model = ModelReader.read(modelFile);
      Map<String, Object> summary = summarize(modelFile, model);
      if (json.enabled()) {
        summaries.add(summary);
      } else {
        if (!first) {
          out.println();
        }
        printText(out, summary);
        if (graph) {
          out.print(printableGraph(GraphPrinter.print(model)));
        }
      }
      first = false;
    }
    if (json.enabled()) {
      // One document whatever the target: a model's object, or a pipeline's components in one array.
      if (Files.isDirectory(target) && Files.isRegularFile(target.resolve("model_index.json"))) {
        Map<String, Object> document = new LinkedHashMap<>();
        document.put("pipeline", target.toString());
        document.put("components", summaries);
        if (bundle != null) {
          document.put("bundle", bundle);
        }
        out.println(compact(document));
      } else {
        out.println(compact(summaries.get(0)));
      }
    }
    out.flush();
    return 0;
  }

  /** The graph text with any control character a name smuggled in escaped, line by line (its newlines stay). */
  private static String printableGraph(String text) {
    StringBuilder printable = new StringBuilder(text.length());
    text.lines().forEach(line -> printable.append(Printable.line(line)).append('\n'));
    return printable.toString();
  }

  /** The model files a target names: itself, or the components of a pipeline folder in model_index.json order. */
  static List<Path> modelsOf(Path target) {
    return PipelineLayout.models(target);
  }

  /** The JSON object of one model, keys exactly as documented. */
  static Map<String, Object> summarize(Path file, Model model) {
    Map<String, Object> summary = new LinkedHashMap<>();
    summary.put("path", file.toString());
    summary.put("irVersion", model.irVersion());
    summary.put("producer", model.producer());
    Map<String, Long> opsets = new LinkedHashMap<>();
    model.opsetImports().forEach((domain, version) -> opsets.put(domain.isEmpty() ? "ai.onnx" : domain, version));
    summary.put("opsetImports", opsets);
    List<Map<String, Object>> inputs = new ArrayList<>();
    for (Value input : model.graph().inputs()) {
      if (input.initializer() == null) {
        inputs.add(valueSummary(input));
      }
    }
    summary.put("inputs", inputs);
    summary.put("outputs", model.graph().outputs().stream().map(InspectCommand::valueSummary).toList());
    Map<String, Integer> ops = new TreeMap<>();
    model.graph().forEachNode(node -> ops.merge(node.opType().key(), 1, Integer::sum));
    summary.put("ops", ops);
    summary.put("nodeCount", model.graph().totalNodeCount());
    long[] totals = new long[3]; // parameters, inline bytes, external bytes
    addInitializers(model.graph(), totals);
    summary.put("parameterCount", totals[0]);
    Map<String, Long> bytes = new LinkedHashMap<>();
    bytes.put("inline", totals[1]);
    bytes.put("external", totals[2]);
    summary.put("initializerBytes", bytes);
    return summary;
  }

  private static void addInitializers(Graph graph, long[] totals) {
    for (Value value : graph.initializers()) {
      Tensor tensor = value.initializer();
      totals[0] += tensor.elementCount();
      totals[tensor instanceof ExternalTensor ? 2 : 1] += tensor.byteSize();
    }
    for (Value value : graph.sparseInitializers()) {
      totals[0] += value.sparseInfo().storedValues();
      totals[1] += value.sparseInfo().encodedBytes();
    }
    graph.forEachNode(node -> node.subgraphs().forEach(subgraph -> {
      if (subgraph.parent() == graph) {
        addInitializers(subgraph, totals);
      }
    }));
  }

  private static Map<String, Object> valueSummary(Value value) {
    Map<String, Object> summary = new LinkedHashMap<>();
    summary.put("name", value.name());
    DataType type = value.dataType();
    summary.put("dtype", value.nonTensorKind() != null ? value.nonTensorKind() : type == null ? null : type.name());
    Shape shape = value.shape();
    if (shape == null) {
      summary.put("shape", null);
    } else {
      List<Object> dims = new ArrayList<>();
      for (Shape.Dim dim : shape.dims()) {
        dims.add(dim instanceof Shape.Known known ? (Object) known.value() : dim instanceof Shape.Symbolic symbolic ? symbolic.name() : null);
      }
      summary.put("shape", dims);
    }
    return summary;
  }

  private static String compact(Map<String, Object> summary) {
    try {
      return COMPACT.writeValueAsString(summary);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
  }

  @SuppressWarnings("unchecked")
  private static void printText(PrintWriter out, Map<String, Object> summary) {
    out.println(Printable.line(summary.get("path").toString()));
    StringBuilder opsets = new StringBuilder();
    ((Map<String, Long>) summary.get("opsetImports")).forEach((domain, version) -> opsets.append(' ').append(Printable.name(domain)).append(':').append(version));
    out.println("  IR " + summary.get("irVersion") + ", producer " + (summary.get("producer").toString().isEmpty() ? "(none)" : Printable.name(summary.get("producer").toString()))
        + ", opsets" + opsets);
    for (String direction : List.of("inputs", "outputs")) {
      out.println("  " + direction + ":");
      for (Map<String, Object> value : (List<Map<String, Object>>) summary.get(direction)) {
        out.println("    " + Printable.name(value.get("name").toString()) + "  " + (value.get("dtype") == null ? "?" : value.get("dtype")) + shapeText((List<Object>) value.get("shape")));
      }
    }
    Map<String, Long> bytes = (Map<String, Long>) summary.get("initializerBytes");
    out.printf(Locale.ROOT, "  nodes %d, parameters %,d, initializers %s inline + %s external%n", summary.get("nodeCount"), summary.get("parameterCount"),
        size(bytes.get("inline")), size(bytes.get("external")));
    List<Map.Entry<String, Integer>> ops = new ArrayList<>(((Map<String, Integer>) summary.get("ops")).entrySet());
    ops.sort(Map.Entry.<String, Integer>comparingByValue().reversed().thenComparing(Map.Entry.comparingByKey()));
    StringBuilder histogram = new StringBuilder("  ops:");
    for (Map.Entry<String, Integer> op : ops) {
      histogram.append(' ').append(Printable.name(op.getKey())).append(' ').append(op.getValue()).append(',');
    }
    out.println(ops.isEmpty() ? "  ops: none" : histogram.substring(0, histogram.length() - 1));
  }

  private static String shapeText(List<Object> shape) {
    if (shape == null) {
      return " (rank unknown)";
    }
    StringBuilder text = new StringBuilder("[");
    for (int i = 0; i < shape.size(); i++) {
      text.append(i > 0 ? "," : "").append(shape.get(i) == null ? "?" : Printable.name(shape.get(i).toString()));
    }
    return text.append(']').toString();
  }

  private static String size(long bytes) {
    if (bytes < 1024) {
      return bytes + " B";
    }
    String[] units = {"KiB", "MiB", "GiB", "TiB"};
    double value = bytes;
    int unit = -1;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit++;
    }
    return String.format(Locale.ROOT, "%.1f %s", value, units[unit]);
  }
}
