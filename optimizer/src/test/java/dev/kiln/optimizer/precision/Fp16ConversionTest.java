package dev.kiln.optimizer.precision;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import dev.kiln.common.HalfFloats;
import dev.kiln.common.KilnException;
import dev.kiln.graph.Attribute;
import dev.kiln.graph.DataType;
import dev.kiln.graph.Graph;
import dev.kiln.graph.Microsoft;
import dev.kiln.graph.Model;
import dev.kiln.graph.ModelWriter;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.OpType;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import dev.kiln.graph.Verifier;
import java.nio.FloatBuffer;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** One test per conversion rule, on small graphs built in Kiln's IR. */
class Fp16ConversionTest {
  private static final Fp16Conversion.Options DEFAULTS = Fp16Conversion.Options.defaults();

  /** x[1,4] → Mul(weight) → Relu → y. */
  private static Model mulRelu(float[] weight) {
    Graph graph = new Graph("g");
    Value x = graph.addInput("x", DataType.FLOAT, Shape.of(1, weight.length));
    Value w = graph.addInitializer("w", Tensor.ofFloats(new long[] {1, weight.length}, weight));
    Node mul = Node.create(Onnx.MUL, "/mul", List.of(x, w), "m");
    graph.append(mul);
    Node relu = Node.create(Onnx.RELU, "/relu", List.of(mul.output()), "y");
    graph.append(relu);
    relu.output().setType(DataType.FLOAT, Shape.of(1, weight.length));
    graph.addOutput(relu.output());
    return model(graph);
  }

  private static Model model(Graph graph) {
    Model model = new Model(8, graph);
    model.opsetImports().put("", 17L);
    model.opsetImports().put("com.microsoft", 1L);
    return model;
  }

  private static Node node(OpType type, String name, List<Value> inputs, String output, Attribute... attributes) {
    Node node = Node.create(type, name, inputs, output);
    for (Attribute attribute : attributes) {
      node.setAttribute(attribute);
    }
    return node;
  }

  private static long casts(Model model) {
    return model.graph().nodes().stream().filter(node -> node.is(Onnx.CAST)).count();
  }

  @Test
  void initializersAreClampedSignPreservinglyAndCounted() {
    Model model = mulRelu(new float[] {1e5f, -1e5f, 1e-9f, -1e-9f, 0f, 1.5f, Float.POSITIVE_INFINITY});
    PrecisionReport report = Fp16Conversion.convert(model, Map.of(), DEFAULTS);
    Value w = model.graph().findValue("w");
    assertEquals(DataType.FLOAT16, w.initializer().dataType());
    float smallest = HalfFloats.fromFloat16(HalfFloats.toFloat16(5.96e-8f));
    assertArrayEquals(new float[] {65504f, -65504f, smallest, -smallest, 0f, 1.5f, 65504f}, w.initializer().floats());
    assertEquals(Map.of("w", 5L), report.clampedValues());
    assertEquals(2, report.float16Nodes());
    assertEquals(7 * 2, report.bytesSaved());
    Verifier.verify(model);
  }

  @Test
  void keepIoTypesCastsAtTheBoundaryAndKeepsNames() {
    Model model = mulRelu(new float[] {1, 2, 3, 4});
    Fp16Conversion.convert(model, Map.of(), DEFAULTS);
    Graph graph = model.graph();
    assertEquals(DataType.FLOAT, graph.inputs().get(0).dataType());
    Value output = graph.outputs().get(0);
    assertEquals("y", output.name());
    assertEquals(DataType.FLOAT, output.dataType());
    assertTrue(output.producer().is(Onnx.CAST));
    assertEquals(2, casts(model));
    float[] y = run(model, new float[] {1, 1, 1, -1});
    assertArrayEquals(new float[] {1, 2, 3, 0}, y);
  }

  @Test
  void withoutKeepIoTypesTheInterfaceIsFloat16() {
    Model model = mulRelu(new float[] {1, 2, 3, 4});
    Fp16Conversion.convert(model, Map.of(), new Fp16Conversion.Options(false, Set.of(), Set.of()));
    assertEquals(DataType.FLOAT16, model.graph().inputs().get(0).dataType());
    assertEquals(DataType.FLOAT16, model.graph().outputs().get(0).dataType());
    assertEquals(0, casts(model));
    Verifier.verify(model);
  }

  @Test
  void blockedOpStaysFloat32BehindCasts() {
    Model model = mulRelu(new float[] {1, 2, 3, 4});
    PrecisionReport report = Fp16Conversion.convert(model, Map.of(), new Fp16Conversion.Options(true, Set.of("Relu"), Set.of()));
    Node relu = model.graph().findNode("/relu");
    assertTrue(relu.input(0).producer().is(Onnx.CAST), "Relu reads the Mul's float16 output through a Cast");
    assertEquals("--block-op Relu", report.float32().get("/relu").reason());
    // The output is Relu's own float32 value: no Cast after it.
    assertEquals(relu.output(), model.graph().outputs().get(0));
    assertEquals(2, casts(model));
    assertArrayEquals(new float[] {1, 2, 3, 0}, run(model, new float[] {1, 1, 1, -1}));
  }

  @Test
  void blockedNodeAndUnknownNodeName() {
    Model model = mulRelu(new float[] {1, 2, 3, 4});
    PrecisionReport report = Fp16Conversion.convert(model, Map.of(), new Fp16Conversion.Options(true, Set.of(), Set.of("/mul")));
    assertEquals(DataType.FLOAT, model.graph().findValue("w").initializer().dataType(), "a float32 node keeps its weight");
    assertEquals(1, report.float32Nodes());
    KilnException.BadInput error = assertThrows(KilnException.BadInput.class, () -> Fp16Conversion.convert(
        mulRelu(new float[] {1}), Map.of(), new Fp16Conversion.Options(true, Set.of(), Set.of("/nope"))));
    assertEquals("--block-node '/nope': no node of that name in the model", error.getMessage());
  }

  @Test
  void resizeScalesAndGroupNormGammaBetaStayFloat32() {
    Graph graph = new Graph("g");
    Value x = graph.addInput("x", DataType.FLOAT, Shape.of(1, 4, 2, 2));
    Value roi = graph.addInitializer("roi", Tensor.ofFloats(new long[] {0}));
    Value scales = graph.addInitializer("scales", Tensor.ofFloats(new long[] {4}, 1, 1, 2, 2));
    Node resize = Node.create(Onnx.RESIZE, "/resize", List.of(x, roi, scales), "r");
    graph.append(resize);
    Value gamma = graph.addInitializer("gamma", Tensor.ofFloats(new long[] {4}, 1, 1, 1, 1));
    Value beta = graph.addInitializer("beta", Tensor.ofFloats(new long[] {4}, 0, 0, 0, 0));
    Node norm = node(Microsoft.GROUP_NORM, "/norm", List.of(resize.output(), gamma, beta), "y",
        Attribute.ofInt("groups", 2), Attribute.ofFloat("epsilon", 1e-5f), Attribute.ofInt("activation", 0),
        Attribute.ofInt("channels_last", 0));
    graph.append(norm);
    norm.output().setType(DataType.FLOAT, Shape.of(1, 4, 4, 4));
    graph.addOutput(norm.output());
    Model model = model(graph);
    PrecisionReport report = Fp16Conversion.convert(model, Map.of(), DEFAULTS);
    assertEquals(2, report.float16Nodes());
    for (String name : List.of("roi", "scales", "gamma", "beta")) {
      assertEquals(DataType.FLOAT, model.graph().findValue(name).initializer().dataType(), name);
    }
    assertEquals("x_to_fp16", resize.input(0).name());
    Verifier.verify(model);
  }

  @Test
  void castPairsBetweenFloat32NodesAreRemoved() {
    // a → Cast(fp16) → Cast(fp32) → b between two float32 nodes: the pair reintroduces overflow and must go.
    Graph graph = new Graph("g");
    Value x = graph.addInput("x", DataType.FLOAT, Shape.of(2));
    Node first = Node.create(Onnx.RELU, "/a", List.of(x), "a");
    Node toHalf = node(Onnx.CAST, "/to_half", List.of(first.output()), "h", Attribute.ofInt("to", DataType.FLOAT16.number()));
    Node back = node(Onnx.CAST, "/back", List.of(toHalf.output()), "f", Attribute.ofInt("to", DataType.FLOAT.number()));
    Node toInt = node(Onnx.CAST, "/to_int", List.of(back.output()), "i", Attribute.ofInt("to", DataType.INT64.number()));
    Node toFloat = node(Onnx.CAST, "/int_back", List.of(toInt.output()), "g", Attribute.ofInt("to", DataType.FLOAT.number()));
    Node last = Node.create(Onnx.RELU, "/b", List.of(toFloat.output()), "y");
    for (Node node : List.of(first, toHalf, back, toInt, toFloat, last)) {
      graph.append(node);
    }
    last.output().setType(DataType.FLOAT, Shape.of(2));
    graph.addOutput(last.output());
    Model model = model(graph);
    assertEquals(2, CastCleanup.run(model));
    assertEquals(first.output(), toInt.input(0), "the float pair is gone; the integer truncation stays");
    assertEquals(2, casts(model));
    assertArrayEquals(new float[] {1e5f, 2f}, run(model, new float[] {1e5f, 2.5f}));
  }

  @Test
  void noOpCastIsRemovedAndAlreadyHalfModelIsNoted() {
    Graph graph = new Graph("g");
    Value x = graph.addInput("x", DataType.FLOAT16, Shape.of(2));
    Value w = graph.addInitializer("w", Tensor.ofFloat16(new long[] {2}, 1, 2));
    Node mul = Node.create(Onnx.MUL, "/mul", List.of(x, w), "m");
    Node cast = node(Onnx.CAST, "/cast", List.of(mul.output()), "y", Attribute.ofInt("to", DataType.FLOAT16.number()));
    graph.append(mul);
    graph.append(cast);
    cast.output().setType(DataType.FLOAT16, Shape.of(2));
    graph.addOutput(cast.output());
    Model model = model(graph);
    PrecisionReport report = Fp16Conversion.convert(model, Map.of(), DEFAULTS);
    assertEquals(List.of("the model is already float16: converted as is"), report.notes());
    assertEquals(1, CastCleanup.run(model));
    assertEquals("y", model.graph().outputs().get(0).name());
    assertNull(model.graph().findNode("/cast"));
  }

  @Test
  void externalWeightsConvertLazilyToHalfTheBytesAndBf16IsLeftAlone(@org.junit.jupiter.api.io.TempDir java.nio.file.Path folder)
      throws Exception {
    float[] weight = new float[4096];
    for (int i = 0; i < weight.length; i++) {
      weight[i] = (i % 7) - 3 + (i == 5 ? 1e6f : 0);
    }
    Model model = mulRelu(weight);
    model.graph().addInitializer("unused_bf16", Tensor.ofBFloat16(new long[] {2}, 1, 2));
    java.nio.file.Path source = folder.resolve("source.onnx");
    ModelWriter.write(model, source, dev.kiln.graph.WriteOptions.externalAbove(1024).withDataFileName("source.data"));
    Model read = dev.kiln.graph.ModelReader.read(source);
    assertTrue(read.graph().findValue("w").initializer() instanceof dev.kiln.graph.ExternalTensor);
    PrecisionReport report = Fp16Conversion.convert(read, Map.of(), DEFAULTS);
    // Converted lazily: the initializer is a computed tensor until the writer streams it.
    assertTrue(read.graph().findValue("w").initializer() instanceof dev.kiln.graph.ComputedTensor);
    assertEquals(Map.of("w", 1L), report.clampedValues());
    assertEquals(List.of("1 BFLOAT16 initializer(s) left as they are"), report.notes());
    java.nio.file.Path target = folder.resolve("half.onnx");
    ModelWriter.write(read, target, dev.kiln.graph.WriteOptions.externalAbove(1024).withDataFileName("half.data"));
    long before = java.nio.file.Files.size(folder.resolve("source.data"));
    long after = java.nio.file.Files.size(folder.resolve("half.data"));
    assertTrue(after * 2 <= before, before + " -> " + after);
    float[] values = dev.kiln.graph.ModelReader.read(target).graph().findValue("w").initializer().floats();
    assertEquals(65504f, values[5]);
    assertEquals(-3f, values[0]);
  }

  /** Loads the model in ORT on CPU (proves it loads) and runs it on one float input. */
  static float[] run(Model model, float[] input) {
    try {
      OrtEnvironment environment = OrtEnvironment.getEnvironment();
      try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
        options.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.NO_OPT);
        try (OrtSession session = environment.createSession(ModelWriter.toBytes(model), options);
            OnnxTensor x = OnnxTensor.createTensor(environment, FloatBuffer.wrap(input),
                model.graph().inputs().get(0).shape().sizes());
            OrtSession.Result result = session.run(Map.of(session.getInputNames().iterator().next(), x))) {
          FloatBuffer out = ((OnnxTensor) result.get(0)).getFloatBuffer();
          float[] values = new float[out.remaining()];
          out.get(values);
          return values;
        }
      }
    } catch (ai.onnxruntime.OrtException e) {
      throw new AssertionError(e);
    }
  }
}
