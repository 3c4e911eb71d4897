package dev.kiln.graph;

import dev.kiln.common.Printable;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * A stable text form of a model or graph, for golden tests, diffs and {@code kiln inspect --graph}.
 * One line per input, initializer, node and output; subgraphs indented under their node. The same IR
 * always prints the same text. {@link #printDetailed} adds content digests of every tensor, doc strings and
 * metadata, so two IRs print the same detailed text exactly when they are equal.
 */
public final class GraphPrinter {
  private static final int VALUES_SHOWN = 16;

  private final StringBuilder out = new StringBuilder();
  private final boolean detailed;

  private GraphPrinter(boolean detailed) {
    this.detailed = detailed;
  }

  public static String print(Model model) {
    return new GraphPrinter(false).model(model).toString();
  }

  public static String print(Graph graph) {
    GraphPrinter printer = new GraphPrinter(false);
    printer.graph(graph, "", "graph");
    return printer.out.toString();
  }

  /** Everything the IR models, tensors as SHA-256 digests: equal text means equal IR. Reads all tensor data. */
  public static String printDetailed(Model model) {
    return new GraphPrinter(true).model(model).toString();
  }

  private GraphPrinter model(Model model) {
    out.append("ir_version ").append(model.irVersion()).append('\n');
    out.append("producer ").append(Attribute.quote(model.producerName())).append(' ').append(Attribute.quote(model.producerVersion()))
        .append('\n');
    if (!model.domain().isEmpty() || model.modelVersion() != 0) {
      out.append("domain ").append(Attribute.quote(model.domain())).append(" model_version ").append(model.modelVersion()).append('\n');
    }
    out.append("opset_import");
    model.opsetImports().forEach((domain, version) -> out.append(' ').append(Attribute.quote(domain)).append(':').append(version));
    out.append('\n');
    if (detailed) {
      metadata("", model.metadata());
      doc("", model.docString());
      for (var function : model.functions()) {
        out.append("function ").append(Attribute.quote(function.getDomain())).append(' ').append(Attribute.quote(function.getName()))
            .append(" nodes=").append(function.getNodeCount()).append(" bytes=").append(function.getSerializedSize()).append('\n');
      }
    }
    graph(model.graph(), "", "graph");
    return this;
  }

  private void graph(Graph graph, String indent, String label) {
    out.append(indent).append(label).append(' ').append(Attribute.quote(graph.name())).append(" {\n");
    String inner = indent + "  ";
    if (detailed) {
      doc(inner, graph.docString());
      metadata(inner, graph.metadata());
    }
    for (Value input : graph.inputs()) {
      out.append(inner).append("input ").append(valueText(input)).append('\n');
    }
    for (Value value : graph.initializers()) {
      out.append(inner).append("initializer ").append(value).append(" = ").append(tensorText(value.initializer(), detailed)).append('\n');
    }
    for (Value value : graph.sparseInitializers()) {
      out.append(inner).append("sparse_initializer ").append(value).append(" dims=").append(value.sparseInfo().dims())
          .append(" bytes=").append(value.sparseInfo().encodedBytes()).append('\n');
    }
    for (Node node : graph.nodes()) {
      node(node, inner);
    }
    for (Value output : graph.outputs()) {
      out.append(inner).append("output ").append(valueText(output)).append('\n');
    }
    out.append(indent).append("}\n");
  }

  private void node(Node node, String indent) {
    out.append(indent);
    List<Value> outputs = node.outputs();
    for (int i = 0; i < outputs.size(); i++) {
      out.append(i > 0 ? ", " : "").append(outputs.get(i) == null ? "_" : valueText(outputs.get(i)));
    }
    out.append(outputs.isEmpty() ? "" : " = ").append(node.opType().key()).append('(');
    List<Value> inputs = node.inputs();
    for (int i = 0; i < inputs.size(); i++) {
      out.append(i > 0 ? ", " : "").append(inputs.get(i) == null ? "_" : inputs.get(i).toString());
    }
    out.append(')');
    List<Attribute> attributes = node.attributes();
    boolean anyPlain = attributes.stream().anyMatch(attribute -> attribute.graphs().isEmpty());
    if (anyPlain) {
      out.append(" {");
      boolean first = true;
      for (Attribute attribute : attributes) {
        if (attribute.graphs().isEmpty()) {
          out.append(first ? "" : ", ").append(attribute.name()).append('=').append(attributeText(attribute));
          first = false;
        }
      }
      out.append('}');
    }
    if (!node.name().isEmpty()) {
      out.append("  # ").append(Printable.name(node.name()));
    }
    out.append('\n');
    if (detailed) {
      doc(indent + "  ", node.docString());
      metadata(indent + "  ", node.metadata());
      if (!node.overload().isEmpty()) {
        out.append(indent).append("  overload ").append(Attribute.quote(node.overload())).append('\n');
      }
    }
    for (Attribute attribute : attributes) {
      List<Graph> graphs = attribute.graphs();
      for (int i = 0; i < graphs.size(); i++) {
        graph(graphs.get(i), indent + "  ", attribute.name() + (attribute.kind() == Attribute.Kind.GRAPHS ? "[" + i + "]" : ""));
      }
    }
  }

  private String attributeText(Attribute attribute) {
    if (attribute.kind() == Attribute.Kind.TENSOR && (attribute.refAttrName() == null || attribute.refAttrName().isEmpty())) {
      return tensorText(attribute.asTensor(), detailed);
    }
    if (attribute.kind() == Attribute.Kind.TENSORS && (attribute.refAttrName() == null || attribute.refAttrName().isEmpty())) {
      return attribute.asTensors().stream().map(tensor -> tensorText(tensor, detailed)).toList().toString();
    }
    return attribute.valueText();
  }

  private static String valueText(Value value) {
    String type = typeText(value);
    return type.isEmpty() ? value.toString() : value + ": " + type;
  }

  /** "FLOAT[1,3,'N',?]", "FLOAT" (unknown rank), "sequence(...)" for non-tensor types, "" if unknown. */
  static String typeText(Value value) {
    if (value.nonTensorType() != null) {
      return value.nonTensorType().getValueCase().name().toLowerCase(Locale.ROOT).replace("_type", "") + "(" + shortProto(value.nonTensorType())
          + ")";
    }
    DataType type = value.dataType();
    Shape shape = value.shape();
    if (type == null && shape == null) {
      return "";
    }
    return (type == null ? "?" : type.name()) + (shape == null ? "" : shape.toString());
  }

  private static String shortProto(com.google.protobuf.Message message) {
    return com.google.protobuf.TextFormat.printer().emittingSingleLine(true).printToString(message).trim();
  }

  /** "FLOAT[2,3] [1.0,2.0,...]" for small tensors; large ones show their storage, or a digest when detailed. */
  static String tensorText(Tensor tensor, boolean digest) {
    StringBuilder text = new StringBuilder(tensor.dataType().name()).append(Shape.of(tensor.dims()));
    long count = tensor.elementCount();
    if (count <= VALUES_SHOWN && tensor.dataType() != DataType.STRING && valuesPrintable(tensor.dataType())) {
      text.append(' ').append(valuesText(tensor));
    } else if (tensor.dataType() == DataType.STRING && count <= VALUES_SHOWN) {
      text.append(' ').append(tensor.strings().stream().map(string -> Attribute.quote(string.toStringUtf8())).toList());
    } else if (tensor instanceof ExternalTensor external && !digest) {
      // Storage shows in the plain form only; the detailed form compares content, wherever it lives.
      text.append(" external ").append(external.length()).append(" bytes");
    } else {
      text.append(" ").append(tensor.byteSize()).append(" bytes");
    }
    if (digest) {
      text.append(" sha256:").append(TensorValues.digest(tensor), 0, 16);
    }
    return text.toString();
  }

  private static boolean valuesPrintable(DataType type) {
    return type == DataType.FLOAT || type == DataType.DOUBLE || type == DataType.FLOAT16 || type == DataType.BFLOAT16 || type.isInteger()
        || type == DataType.BOOL;
  }

  private static String valuesText(Tensor tensor) {
    StringBuilder text = new StringBuilder("[");
    if (tensor.dataType().isInteger() || tensor.dataType() == DataType.BOOL) {
      long[] values = tensor.longs();
      for (int i = 0; i < values.length; i++) {
        text.append(i > 0 ? "," : "").append(values[i]);
      }
    } else {
      double[] values = tensor.doubles();
      for (int i = 0; i < values.length; i++) {
        text.append(i > 0 ? "," : "").append(tensor.dataType() == DataType.DOUBLE ? Double.toString(values[i]) : Float.toString((float) values[i]));
      }
    }
    return text.append(']').toString();
  }

  private void doc(String indent, String docString) {
    if (!docString.isEmpty()) {
      out.append(indent).append("doc ").append(Attribute.quote(docString)).append('\n');
    }
  }

  private void metadata(String indent, Map<String, String> metadata) {
    metadata.forEach((key, value) -> out.append(indent).append("metadata ").append(Attribute.quote(key)).append('=')
        .append(Attribute.quote(value)).append('\n'));
  }

  @Override
  public String toString() {
    return out.toString();
  }
}
