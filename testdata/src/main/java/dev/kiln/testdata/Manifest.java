package dev.kiln.testdata;

import com.fasterxml.jackson.databind.JsonNode;
import dev.kiln.common.Json;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code testdata/fixtures/manifest.json}, written by the generator: package versions, and per component its config,
 * parameter count, module inventory (how many GroupNorm, attention, GEGLU, ... modules it has — the numbers fusion
 * tests derive expected counts from), ONNX node counts and op histograms, test data sets, and the size and sha256 of
 * every committed file. Paths in it are relative to {@code testdata/}.
 */
public final class Manifest {
  private final Path testdata;
  private final JsonNode json;
  private final Map<String, Component> components;
  private final Map<String, FileEntry> files;

  private Manifest(Path testdata, JsonNode json) {
    this.testdata = testdata;
    this.json = json;
    Map<String, Component> parsedComponents = new LinkedHashMap<>();
    for (Iterator<Map.Entry<String, JsonNode>> it = json.path("components").fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> entry = it.next();
      parsedComponents.put(entry.getKey(), parseComponent(entry.getKey(), entry.getValue()));
    }
    this.components = Collections.unmodifiableMap(parsedComponents);
    Map<String, FileEntry> parsedFiles = new LinkedHashMap<>();
    for (Iterator<Map.Entry<String, JsonNode>> it = json.path("files").fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> entry = it.next();
      JsonNode value = entry.getValue();
      parsedFiles.put(entry.getKey(), new FileEntry(entry.getKey(), value.path("bytes").asLong(-1),
          value.hasNonNull("sha256") ? value.get("sha256").asText() : null,
          value.hasNonNull("link") ? value.get("link").asText() : null));
    }
    this.files = Collections.unmodifiableMap(parsedFiles);
  }

  static Manifest read(Path testdata) {
    Path path = testdata.resolve("fixtures/manifest.json");
    try {
      return new Manifest(testdata, Json.mapper().readTree(path.toFile()));
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read the fixture manifest " + path, e);
    }
  }

  /** The whole document, for facts without an accessor (configs, overflow report, tokenizer ids). */
  public JsonNode json() {
    return json;
  }

  public Map<String, Component> components() {
    return components;
  }

  public Component component(String name) {
    Component component = components.get(name);
    if (component == null) {
      throw new IllegalArgumentException("no fixture component '" + name + "'; known: " + components.keySet());
    }
    return component;
  }

  /** Every generated file (and link) by its path relative to testdata/. */
  public Map<String, FileEntry> files() {
    return files;
  }

  /** The exact version of a package the fixtures were generated with: python, torch, onnx, numpy. */
  public String version(String packageName) {
    return json.path("versions").path(packageName).asText(null);
  }

  private Component parseComponent(String name, JsonNode node) {
    Map<String, Integer> modules = new LinkedHashMap<>();
    node.path("modules").fields().forEachRemaining(e -> modules.put(e.getKey(), e.getValue().asInt()));
    Map<Integer, OnnxFile> onnx = new LinkedHashMap<>();
    node.path("onnx").fields().forEachRemaining(e -> {
      Map<String, Integer> histogram = new LinkedHashMap<>();
      e.getValue().path("op_histogram").fields().forEachRemaining(h -> histogram.put(h.getKey(), h.getValue().asInt()));
      onnx.put(Integer.parseInt(e.getKey()), new OnnxFile(testdata.resolve(e.getValue().path("path").asText()),
          e.getValue().path("nodes").asInt(), e.getValue().path("initializers").asInt(),
          Collections.unmodifiableMap(histogram)));
    });
    List<TestDataSet> sets = new ArrayList<>();
    for (JsonNode set : node.path("test_data_sets")) {
      Path folder = testdata.resolve(set.path("folder").asText());
      sets.add(new TestDataSet(folder, tensors(folder, set.path("inputs"), "input_"),
          tensors(folder, set.path("outputs"), "output_")));
    }
    return new Component(name, node.path("family").asText(), node.path("kind").asText(), node.path("class").asText(),
        node.path("parameters").asLong(), Collections.unmodifiableMap(modules), strings(node.path("inputs")),
        strings(node.path("outputs")), Collections.unmodifiableMap(onnx), List.copyOf(sets),
        node.path("files").has("torchscript") ? testdata.resolve(node.path("files").path("torchscript").asText()) : null,
        node);
  }

  private static List<StoredTensor> tensors(Path folder, JsonNode array, String prefix) {
    List<StoredTensor> tensors = new ArrayList<>();
    for (int index = 0; index < array.size(); index++) {
      JsonNode tensor = array.get(index);
      List<Long> shape = new ArrayList<>();
      tensor.path("shape").forEach(dim -> shape.add(dim.asLong()));
      tensors.add(new StoredTensor(tensor.path("name").asText(), folder.resolve(prefix + index + ".pb"), shape,
          tensor.path("dtype").asText(), tensor.has("max_abs") ? tensor.get("max_abs").asDouble() : Double.NaN));
    }
    return tensors;
  }

  private static List<String> strings(JsonNode array) {
    List<String> values = new ArrayList<>();
    array.forEach(value -> values.add(value.asText()));
    return List.copyOf(values);
  }

  /**
   * One component as the generator recorded it. {@code torchScript} is null for the torch-2 (SDPA) form
   * components, which are ONNX only (see {@link #attention}).
   */
  public record Component(String name, String family, String kind, String moduleClass, long parameters,
                          Map<String, Integer> modules, List<String> inputs, List<String> outputs,
                          Map<Integer, OnnxFile> onnx, List<TestDataSet> testDataSets, Path torchScript,
                          JsonNode json) {
    /** How many modules of this inventory kind (e.g. "GroupNorm+SiLU", "Attention(cross)"); 0 when none. */
    public int modules(String kind) {
      return modules.getOrDefault(kind, 0);
    }

    /**
     * How the attention was exported: "torch1" (heads folded into the batch, the scale a constant multiplying
     * the scores) or "sdpa" (torch 2's scaled_dot_product_attention: 4-D heads, q and kᵀ each scaled by a
     * square root computed from the graph).
     */
    public String attention() {
      return json.path("attention").asText("torch1");
    }

    /** The opsets this component was exported at (both for torch-1 form components, 14 for the SDPA form). */
    public List<Opset> opsets() {
      return onnx.keySet().stream().sorted().map(Opset::of).toList();
    }

    public boolean hasTorchScript() {
      return torchScript != null;
    }

    public OnnxFile onnx(Opset opset) {
      OnnxFile file = onnx.get(opset.version());
      if (file == null) {
        throw new IllegalArgumentException(name + " has no opset " + opset.version() + " export");
      }
      return file;
    }

    public JsonNode config() {
      return json.path("config");
    }

    /**
     * For the overflow-prone VAE decoder: the ONNX nodes whose fp32 outputs exceed fp16's 65504 on the test data
     * sets (those a precision pass must keep in fp32), with the largest |value| seen; empty for other components.
     */
    public List<OverflowNode> overflowNodes() {
      List<OverflowNode> nodes = new ArrayList<>();
      for (JsonNode node : json.path("overflow").path("overflowing_module_outputs")) {
        double largest = 0;
        for (JsonNode value : node.path("max_abs_per_test_set")) {
          largest = Math.max(largest, value.asDouble());
        }
        nodes.add(new OverflowNode(node.path("node").asText(), node.path("module").asText(), largest));
      }
      return List.copyOf(nodes);
    }
  }

  /** An ONNX node whose output overflows fp16, the torch module that produced it, and the largest |value|. */
  public record OverflowNode(String node, String module, double maxAbs) {}

  /** An exported ONNX file: node and initializer counts and its op histogram ("com.microsoft.X" for contrib ops). */
  public record OnnxFile(Path path, int nodes, int initializers, Map<String, Integer> opHistogram) {
    public int count(String opType) {
      return opHistogram.getOrDefault(opType, 0);
    }
  }

  /** A generated file: size and sha256, or, for a relative symbolic link, its target. */
  public record FileEntry(String path, long bytes, String sha256, String link) {
    public boolean isLink() {
      return link != null;
    }
  }
}
