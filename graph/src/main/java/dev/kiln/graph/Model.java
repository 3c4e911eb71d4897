package dev.kiln.graph;

import dev.kiln.graph.proto.OnnxProto.FunctionProto;
import dev.kiln.graph.proto.OnnxProto.ModelProto;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * An ONNX model: header fields, opset imports, metadata, model-local functions and the main graph.
 * What the IR does not model (training info, device configurations, unknown fields) is kept from the
 * file it was read from and written back unchanged.
 */
public final class Model {
  private long irVersion;
  private String producerName = "";
  private String producerVersion = "";
  private String domain = "";
  private long modelVersion;
  private String docString = "";
  private final Map<String, Long> opsetImports = new LinkedHashMap<>();
  private final Map<String, String> metadata = new LinkedHashMap<>();
  private final List<FunctionProto> functions = new ArrayList<>();
  private Graph graph;
  /** The file this model was read from, for messages; null for a model built in memory. */
  Path source;
  /** Residue of the read ModelProto (training info, configuration, unknown fields, field presence). */
  ModelProto original;

  public Model(long irVersion, Graph graph) {
    this.irVersion = irVersion;
    this.graph = graph;
  }

  public long irVersion() {
    return irVersion;
  }

  public void setIrVersion(long irVersion) {
    this.irVersion = irVersion;
  }

  public String producerName() {
    return producerName;
  }

  public String producerVersion() {
    return producerVersion;
  }

  /** "name version", or just the name when the version is empty. */
  public String producer() {
    return producerVersion.isEmpty() ? producerName : producerName + " " + producerVersion;
  }

  public void setProducer(String name, String version) {
    this.producerName = name == null ? "" : name;
    this.producerVersion = version == null ? "" : version;
  }

  public String domain() {
    return domain;
  }

  public void setDomain(String domain) {
    this.domain = domain == null ? "" : domain;
  }

  public long modelVersion() {
    return modelVersion;
  }

  public void setModelVersion(long modelVersion) {
    this.modelVersion = modelVersion;
  }

  public String docString() {
    return docString;
  }

  public void setDocString(String docString) {
    this.docString = docString == null ? "" : docString;
  }

  /**
   * Opset imports, domain → version, in file order; mutable. The default domain's key is "" (a file's
   * "ai.onnx" spelling is remembered and reproduced on write as long as the entry is unchanged).
   */
  public Map<String, Long> opsetImports() {
    return opsetImports;
  }

  /** Version imported for {@code domain} ("" or "ai.onnx" for the default domain), or 0 when not imported. */
  public long opsetVersion(String domain) {
    return opsetImports.getOrDefault(OpType.normalizeDomain(domain), 0L);
  }

  /** metadata_props in file order; mutable. */
  public Map<String, String> metadata() {
    return metadata;
  }

  /** Model-local functions, kept in their ONNX form behind the reader and writer; mutable. */
  List<FunctionProto> functions() {
    return functions;
  }

  /** Domains of the model-local functions, in file order (a node calling one is in that domain). */
  public List<String> functionDomains() {
    return functions.stream().map(FunctionProto::getDomain).toList();
  }

  /** Names of the model-local functions, in file order. */
  public List<String> functionNames() {
    return functions.stream().map(FunctionProto::getName).toList();
  }

  public Graph graph() {
    return graph;
  }

  public void setGraph(Graph graph) {
    this.graph = graph;
  }

  /** The file this model was read from, or null. */
  public Path source() {
    return source;
  }

  /** Keeps what the reader saw besides the graph (training info, unknown fields) for the writer, and the file. */
  void keepResidue(ModelProto residue, Path file) {
    this.original = residue;
    this.source = file;
  }
}
