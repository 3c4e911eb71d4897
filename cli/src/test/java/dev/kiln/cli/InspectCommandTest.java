package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.graph.Attribute;
import dev.kiln.graph.DataType;
import dev.kiln.graph.Graph;
import dev.kiln.graph.Microsoft;
import dev.kiln.graph.Model;
import dev.kiln.graph.ModelWriter;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import dev.kiln.graph.WriteOptions;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code kiln inspect}: exact JSON keys, values from real models, pipeline folders, exit codes. */
class InspectCommandTest {
  static final Path CONV = Path.of(System.getProperty("kiln.onnx.testdata", "/usr/share/libonnx-testdata/data"),
      "pytorch-converted/test_Conv2d/model.onnx");
  static final Set<String> KEYS = Set.of("path", "irVersion", "producer", "opsetImports", "inputs", "outputs", "ops", "nodeCount",
      "parameterCount", "initializerBytes");

  record Run(int exitCode, String out, String err) {}

  static Run run(String... arguments) {
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    int code = Main.execute(arguments, new PrintWriter(out, true), new PrintWriter(err, true));
    return new Run(code, out.toString(), err.toString());
  }

  private static List<JsonNode> jsonLines(String output) throws Exception {
    List<JsonNode> objects = new ArrayList<>();
    for (String line : output.lines().toList()) {
      objects.add(new ObjectMapper().readTree(line));
    }
    return objects;
  }

  private static JsonNode readJson(String output) {
    try {
      return new ObjectMapper().readTree(output);
    } catch (java.io.IOException e) {
      throw new AssertionError("not one JSON document: " + output, e);
    }
  }

  private static Set<String> keys(JsonNode node) {
    Set<String> keys = new TreeSet<>();
    for (Iterator<String> names = node.fieldNames(); names.hasNext(); ) {
      keys.add(names.next());
    }
    return keys;
  }

  @Test
  void jsonOfACorpusModelHasExactlyTheDocumentedKeysAndValues() throws Exception {
    Run run = run("inspect", CONV.toString(), "--json");
    assertEquals(0, run.exitCode(), run.err());
    List<JsonNode> objects = jsonLines(run.out());
    assertEquals(1, objects.size());
    JsonNode model = objects.get(0);
    assertEquals(new TreeSet<>(KEYS), keys(model));
    assertEquals(CONV.toString(), model.get("path").asText());
    assertEquals(3, model.get("irVersion").asInt());
    assertEquals("pytorch 0.3", model.get("producer").asText());
    assertEquals("{\"ai.onnx\":6}", model.get("opsetImports").toString());
    assertEquals("[{\"name\":\"0\",\"dtype\":\"FLOAT\",\"shape\":[2,3,7,5]}]", model.get("inputs").toString(), "initializer-backed inputs are not listed");
    assertEquals("[{\"name\":\"3\",\"dtype\":\"FLOAT\",\"shape\":[2,4,5,4]}]", model.get("outputs").toString());
    assertEquals("{\"Conv\":1}", model.get("ops").toString());
    assertEquals(1, model.get("nodeCount").asInt());
    assertEquals(4 * 3 * 3 * 2 + 4, model.get("parameterCount").asLong());
    assertEquals("{\"inline\":304,\"external\":0}", model.get("initializerBytes").toString());
  }

  /** A model with a symbolic batch, a contrib op, external weights and an If body. */
  static Path syntheticModel(Path folder) {
    Graph graph = new Graph("synthetic");
    Value x = graph.addInput("sample", DataType.FLOAT16, Shape.of(Shape.symbolic("batch"), Shape.known(4), Shape.UNKNOWN));
    Value gamma = graph.addInitializer("gamma", Tensor.ofFloats(new long[] {4}, 1, 1, 1, 1));
    Value weight = graph.addInitializer("weight", Tensor.ofFloats(new long[] {64, 64}, new float[64 * 64]));
    Node norm = new Node(Microsoft.GROUP_NORM, "norm", List.of(x, gamma, gamma), List.of("normed"));
    norm.setAttribute(Attribute.ofInt("groups", 2));
    graph.append(norm);
    Node matmul = Node.create(Onnx.MAT_MUL, "project", List.of(norm.output(), weight), "projected");
    graph.append(matmul);
    Value flag = graph.addInput("flag", DataType.BOOL, Shape.SCALAR);
    Graph body = new Graph("body");
    Node inner = Node.create(Onnx.RELU, "", List.of(matmul.output()), "inner");
    body.append(inner);
    body.addOutput(inner.output());
    Node branch = new Node(Onnx.IF, "if", List.of(flag), List.of("out"));
    branch.setAttribute(Attribute.ofGraph("then_branch", body));
    branch.setAttribute(Attribute.ofGraph("else_branch", body));
    graph.append(branch);
    graph.addOutput(branch.output());
    Model model = new Model(10, graph);
    model.opsetImports().put("", 17L);
    model.opsetImports().put("com.microsoft", 1L);
    model.setProducer("kiln-test", "");
    Path file = folder.resolve("model.onnx");
    ModelWriter.write(model, file, WriteOptions.externalAbove(1024));
    return file;
  }

  @Test
  void symbolicShapesContribOpsAndExternalWeights(@TempDir Path folder) throws Exception {
    Path file = syntheticModel(folder);
    JsonNode model = jsonLines(run("inspect", file.toString(), "--json").out()).get(0);
    assertEquals("[{\"name\":\"sample\",\"dtype\":\"FLOAT16\",\"shape\":[\"batch\",4,null]},{\"name\":\"flag\",\"dtype\":\"BOOL\",\"shape\":[]}]",
        model.get("inputs").toString());
    assertEquals("[{\"name\":\"out\",\"dtype\":null,\"shape\":null}]", model.get("outputs").toString());
    assertEquals("{\"If\":1,\"MatMul\":1,\"Relu\":2,\"com.microsoft:GroupNorm\":1}", model.get("ops").toString());
    assertEquals(5, model.get("nodeCount").asInt(), "nodes of subgraphs count too");
    assertEquals(4 + 64 * 64, model.get("parameterCount").asLong());
    assertEquals("{\"inline\":16,\"external\":16384}", model.get("initializerBytes").toString());
    assertEquals("{\"ai.onnx\":17,\"com.microsoft\":1}", model.get("opsetImports").toString());
  }

  @Test
  void pipelineFoldersPrintEveryComponentInIndexOrder(@TempDir Path folder) throws Exception {
    Files.writeString(folder.resolve("model_index.json"),
        "{\"_class_name\": \"OnnxStableDiffusionPipeline\", \"vae_decoder\": [\"diffusers\", \"OnnxRuntimeModel\"],"
            + " \"text_encoder\": [\"diffusers\", \"OnnxRuntimeModel\"], \"scheduler\": [\"diffusers\", \"PNDMScheduler\"]}");
    Files.createDirectories(folder.resolve("text_encoder"));
    Files.copy(CONV, folder.resolve("text_encoder/model.onnx"));
    syntheticModel(Files.createDirectories(folder.resolve("vae_decoder")));
    Files.createDirectories(folder.resolve("scheduler"));
    Run run = run("inspect", folder.toString(), "--json");
    assertEquals(0, run.exitCode(), run.err());
    JsonNode document = new ObjectMapper().readTree(run.out());
    assertEquals(1, run.out().strip().lines().count(), "one JSON document: " + run.out());
    assertEquals(folder.toString(), document.get("pipeline").asText());
    List<JsonNode> objects = new ArrayList<>();
    document.get("components").forEach(objects::add);
    assertEquals(List.of(folder.resolve("vae_decoder/model.onnx").toString(), folder.resolve("text_encoder/model.onnx").toString()),
        objects.stream().map(object -> object.get("path").asText()).toList());
    objects.forEach(object -> assertEquals(new TreeSet<>(KEYS), keys(object)));

    Run text = run("inspect", folder.toString());
    assertEquals(0, text.exitCode(), text.err());
    assertTrue(text.out().contains("vae_decoder/model.onnx\n  IR 10, producer kiln-test, opsets ai.onnx:17 com.microsoft:1"), text.out());
    assertTrue(text.out().contains("    sample  FLOAT16[batch,4,?]"), text.out());
    assertTrue(text.out().contains("  nodes 5, parameters 4,100, initializers 16 B inline + 16.0 KiB external"), text.out());
    assertTrue(text.out().contains("  ops: Relu 2, If 1, MatMul 1, com.microsoft:GroupNorm 1"), text.out());
  }

  @Test
  void folderWithOnlyAClassNameFallsBackToComponentFolders() {
    Path pipeline = Path.of(System.getProperty("kiln.root", "..")).resolve("runner/src/test/resources/pipelines/contract-sd");
    Run run = run("inspect", pipeline.toString(), "--json");
    assertEquals(0, run.exitCode(), run.err());
    List<String> folders = new ArrayList<>();
    readJson(run.out()).get("components").forEach(component -> folders.add(Path.of(component.get("path").asText()).getParent().getFileName().toString()));
    assertEquals(List.of("text_encoder", "unet", "vae_decoder", "vae_encoder"), folders);
  }

  @Test
  void graphFlagPrintsTheStableText() {
    Run run = run("inspect", CONV.toString(), "--graph");
    assertEquals(0, run.exitCode(), run.err());
    assertTrue(run.out().contains("  %3: FLOAT[2,4,5,4] = Conv(%0, %1, %2)"), run.out());
    assertTrue(run.out().contains("initializer %2 = FLOAT[4] ["), run.out());
  }

  @Test
  void badInputExitsWithTwoAndSaysWhy(@TempDir Path folder) throws Exception {
    Path broken = Files.write(folder.resolve("broken.onnx"), Arrays.copyOfRange(Files.readAllBytes(CONV), 0, 100));
    Run truncated = run("inspect", broken.toString());
    assertEquals(2, truncated.exitCode());
    assertTrue(truncated.err().startsWith("kiln: " + broken + ": not a valid ONNX model"), truncated.err());
    assertEquals("", truncated.out());

    Run missing = run("inspect", folder.resolve("absent.onnx").toString());
    assertEquals(2, missing.exitCode());
    assertTrue(missing.err().contains("no such file or folder"), missing.err());

    Run empty = run("inspect", folder.toString());
    assertEquals(2, empty.exitCode());
    assertTrue(empty.err().contains("not a pipeline folder"), empty.err());

    Run both = run("inspect", CONV.toString(), "--json", "--graph");
    assertEquals(2, both.exitCode());
    assertTrue(both.err().contains("cannot be combined"), both.err());
  }

  private static final class Arrays {
    static byte[] copyOfRange(byte[] bytes, int from, int to) {
      return java.util.Arrays.copyOfRange(bytes, from, to);
    }
  }
}
