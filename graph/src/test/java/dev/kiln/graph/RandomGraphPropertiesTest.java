package dev.kiln.graph;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;

/**
 * Random small graphs (a seed drives every choice: types, shapes, op mix, attributes, metadata, subgraphs,
 * tensor storage) survive write → read unchanged; and the verifier rejects each kind of broken graph.
 */
class RandomGraphPropertiesTest {
  private static final List<OpType> UNARY = List.of(Onnx.RELU, Onnx.NEG, Onnx.ABS, Onnx.SIGMOID, Onnx.IDENTITY);
  private static final List<OpType> BINARY = List.of(Onnx.ADD, Onnx.MUL, Onnx.SUB, Onnx.DIV, OpType.microsoft("BiasAdd"));
  private static final List<DataType> TYPES = List.of(DataType.FLOAT, DataType.FLOAT16, DataType.INT64, DataType.INT8, DataType.BFLOAT16,
      DataType.UINT4, DataType.FLOAT8E4M3FN);

  /** A random model built through the public IR API only. */
  static Model randomModel(long seed) {
    Random random = new Random(seed);
    Graph graph = new Graph("random_" + seed);
    graph.setDocString(random.nextBoolean() ? "doc " + random.nextInt() : "");
    if (random.nextBoolean()) {
      graph.metadata().put("origin", "jqwik-" + random.nextInt(100));
    }
    List<Value> available = new ArrayList<>();
    int inputs = 1 + random.nextInt(3);
    for (int i = 0; i < inputs; i++) {
      available.add(graph.addInput("in" + i, TYPES.get(random.nextInt(TYPES.size())), randomShape(random)));
    }
    int initializers = random.nextInt(4);
    for (int i = 0; i < initializers; i++) {
      available.add(graph.addInitializer("w" + i, randomTensor(random)));
    }
    int nodes = 1 + random.nextInt(8);
    for (int i = 0; i < nodes; i++) {
      boolean binary = random.nextBoolean();
      List<Value> operands = new ArrayList<>();
      operands.add(available.get(random.nextInt(available.size())));
      if (binary) {
        operands.add(random.nextInt(5) == 0 ? null : available.get(random.nextInt(available.size())));
      }
      OpType op = binary ? BINARY.get(random.nextInt(BINARY.size())) : UNARY.get(random.nextInt(UNARY.size()));
      Node node = new Node(op, random.nextBoolean() ? "node" + i : "", operands, List.of("v" + i));
      if (random.nextBoolean()) {
        node.setAttribute(Attribute.ofInt("axis", random.nextInt(7) - 3));
      }
      if (random.nextBoolean()) {
        node.setAttribute(Attribute.ofFloats("scales", random.nextFloat(), -random.nextFloat()));
      }
      if (random.nextInt(4) == 0) {
        node.setAttribute(Attribute.ofString("label", "ünïcode-" + random.nextInt(1000)));
      }
      if (random.nextInt(4) == 0) {
        node.setAttribute(Attribute.ofTensor("value", randomTensor(random)));
      }
      if (random.nextInt(5) == 0) {
        node.metadata().put("source", "line " + random.nextInt(500));
      }
      if (random.nextInt(4) == 0) {
        node.output().setType(TYPES.get(random.nextInt(TYPES.size())), random.nextBoolean() ? randomShape(random) : null);
      }
      if (random.nextInt(6) == 0) {
        // A body capturing an outer value, like an If branch.
        Graph body = new Graph("body" + i);
        Node inner = Node.create(Onnx.IDENTITY, "", List.of(available.get(random.nextInt(available.size()))), "inner" + i);
        body.append(inner);
        body.addOutput(inner.output());
        node.setAttribute(Attribute.ofGraph("then_branch", body));
      }
      graph.append(node);
      available.add(node.output());
    }
    graph.addOutput(available.get(available.size() - 1));
    if (random.nextBoolean() && available.size() > 2) {
      graph.addOutput(available.get(random.nextInt(available.size())));
    }
    Model model = new Model(8 + random.nextInt(4), graph);
    model.opsetImports().put("", 13L + random.nextInt(9));
    if (random.nextBoolean()) {
      model.opsetImports().put("com.microsoft", 1L);
    }
    model.setProducer("jqwik", Integer.toString(random.nextInt(10)));
    if (random.nextBoolean()) {
      model.metadata().put("seed", Long.toString(seed));
    }
    return model;
  }

  private static Shape randomShape(Random random) {
    int rank = random.nextInt(4);
    List<Shape.Dim> dims = new ArrayList<>();
    for (int i = 0; i < rank; i++) {
      dims.add(switch (random.nextInt(3)) {
        case 0 -> Shape.known(random.nextInt(9));
        case 1 -> Shape.symbolic("d" + random.nextInt(3));
        default -> Shape.UNKNOWN;
      });
    }
    return Shape.of(dims);
  }

  private static Tensor randomTensor(Random random) {
    DataType type = TYPES.get(random.nextInt(TYPES.size()));
    long[] dims = new long[random.nextInt(3)];
    long count = 1;
    for (int i = 0; i < dims.length; i++) {
      dims[i] = 1 + random.nextInt(300);
      count *= dims[i];
    }
    byte[] bytes = new byte[(int) type.byteSize(count)];
    random.nextBytes(bytes);
    return Tensor.ofBytes(type, dims, bytes);
  }

  private static WriteOptions randomOptions(Random random) {
    return switch (random.nextInt(3)) {
      case 0 -> WriteOptions.keepLayout();
      case 1 -> WriteOptions.externalAbove(random.nextInt(400)).withAlignment(1 << random.nextInt(13));
      default -> WriteOptions.allInline();
    };
  }

  @Property(tries = 100)
  void randomGraphsSurviveWriteThenRead(@ForAll long seed) {
    Model model = randomModel(seed);
    assertEquals(List.of(), Verifier.check(model));
    Path folder = temporaryFolder();
    try {
      WriteOptions options = randomOptions(new Random(~seed));
      Path first = folder.resolve("first/model.onnx");
      ModelWriter.write(model, first, options);
      Model back = ModelReader.read(first);
      assertEquals(GraphPrinter.printDetailed(model), GraphPrinter.printDetailed(back));
      assertEquals(List.of(), Verifier.check(back));
      // Writing what was read gives the very same bytes: the reader loses nothing the writer wrote.
      Path second = folder.resolve("second/model.onnx");
      ModelWriter.write(back, second, options);
      assertArrayEquals(Files.readAllBytes(first), Files.readAllBytes(second));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } finally {
      deleteRecursively(folder);
    }
  }

  /** The kinds of damage the verifier must notice. */
  enum Damage {
    CONSUMER_BEFORE_PRODUCER,
    DUPLICATE_NAME,
    DANGLING_USE,
    UNPRODUCED_OUTPUT,
    LOST_USE
  }

  @Property(tries = 100)
  void verifierRejectsDamagedGraphs(@ForAll long seed, @ForAll Damage damage, @ForAll @IntRange(min = 0, max = 1000) int pick) {
    Model model = randomModel(seed);
    Graph graph = model.graph();
    List<Node> nodes = graph.nodes();
    Node victim = nodes.get(pick % nodes.size());
    switch (damage) {
      case CONSUMER_BEFORE_PRODUCER -> {
        // Put a fresh consumer of the victim's output at the very front.
        Node early = Node.create(Onnx.NEG, "early", List.of(victim.output()), graph.uniqueName("early"));
        graph.insertBefore(nodes.get(0), early);
      }
      case DUPLICATE_NAME -> victim.output().setName(graph.inputs().get(0).name());
      case DANGLING_USE -> victim.output().addUse(Node.create(Onnx.ABS, "ghost", List.of(victim.output()), "ghost"), 0);
      case UNPRODUCED_OUTPUT -> graph.addOutput(new Value(graph.uniqueName("nowhere")));
      case LOST_USE -> {
        Value input = victim.input(0);
        input.removeUse(victim, 0);
      }
    }
    assertFalse(Verifier.check(model).isEmpty(), damage + " went unnoticed");
  }

  private static Path temporaryFolder() {
    try {
      return Files.createTempDirectory("kiln-property");
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static void deleteRecursively(Path folder) {
    try (Stream<Path> paths = Files.walk(folder)) {
      for (Path path : paths.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(path);
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
