package dev.kiln.optimizer.precision;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.graph.DataType;
import dev.kiln.graph.ExternalTensor;
import dev.kiln.graph.Graph;
import dev.kiln.graph.Model;
import dev.kiln.graph.ModelReader;
import dev.kiln.graph.ModelWriter;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Shape;
import dev.kiln.graph.SharedTensors;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import dev.kiln.graph.WriteOptions;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The mixed search's sessions without weight copies: a session over an in-memory graph whose weights ORT reads by
 * reference computes what a session over the written file computes; float16 weights are converted once, exactly as
 * the writer converts them; in-graph range statistics and in-graph comparisons give what the exposed arrays give.
 */
class MixedSessionsTest {
  @TempDir Path folder;

  private static final int WIDTH = 128;

  /**
   * x[2,128] → MatMul(w, 128×128: 64 KiB, shared by reference) → "/matmul" → Mul(scale) → "/scale" → Relu → y; w
   * holds one value past float16's range and one below its smallest subnormal (both clamped by the conversion).
   */
  private Model model(float scale) {
    Graph graph = new Graph("g");
    Value x = graph.addInput("x", DataType.FLOAT, Shape.of(2, WIDTH));
    float[] weights = new float[WIDTH * WIDTH];
    for (int i = 0; i < weights.length; i++) {
      weights[i] = (float) Math.sin(i * 0.37) * 0.1f;
    }
    weights[5] = 1e5f;
    weights[7] = 1e-9f;
    Value w = graph.addInitializer("w", Tensor.ofFloats(new long[] {WIDTH, WIDTH}, weights));
    Value s = graph.addInitializer("s", Tensor.ofFloats(new long[0], scale));
    Node matmul = Node.create(Onnx.MAT_MUL, "/matmul", List.of(x, w), "h");
    Node mul = Node.create(Onnx.MUL, "/scale", List.of(matmul.output(), s), "scaled");
    Node relu = Node.create(Onnx.RELU, "/relu", List.of(mul.output()), "y");
    for (Node node : List.of(matmul, mul, relu)) {
      graph.append(node);
      node.output().setType(DataType.FLOAT, Shape.of(2, WIDTH));
    }
    graph.addOutput(relu.output());
    Model model = new Model(8, graph);
    model.opsetImports().put("", 17L);
    // Written and read back, the weight is an external tensor over a data file, as a real model's are.
    Path file = folder.resolve("model-" + scale + ".onnx");
    ModelWriter.write(model, file, WriteOptions.externalAbove(1024));
    return ModelReader.read(file);
  }

  private static Map<String, CalibrationSets.Feed> feeds() {
    float[] x = new float[2 * WIDTH];
    for (int i = 0; i < x.length; i++) {
      x[i] = (float) Math.cos(i * 0.11);
    }
    return Map.of("x", new CalibrationSets.Feed(new long[] {2, WIDTH}, x));
  }

  @Test
  void aSessionOverTheGraphInMemoryComputesWhatTheWrittenFileDoes() {
    Model model = model(1f);
    assertInstanceOf(ExternalTensor.class, model.graph().findValue("w").initializer());
    SharedTensors.GraphOnly graph = SharedTensors.graphOnly(model, SharedTensors.DEFAULT_THRESHOLD);
    assertEquals(Set.of("w"), graph.external().keySet(), "the 64 KiB weight goes by reference, the scalar inline");
    assertTrue(graph.proto().length < 4096, "no weight bytes in the graph: " + graph.proto().length);
    Path file = folder.resolve("written.onnx");
    ModelWriter.write(model, file);
    try (SessionWeights weights = new SessionWeights(model, folder);
        OrtCpu inMemory = new OrtCpu(model, weights);
        OrtCpu written = new OrtCpu(file)) {
      assertTrue(weights.direct(model.graph().findValue("w").initializer()).isDirect());
      assertArrayEquals(written.run(feeds()).get("y"), inMemory.run(feeds()).get("y"));
    }
  }

  @Test
  void float16WeightsAreConvertedOnceAsTheWriterConvertsThem() {
    Model model = model(1f);
    Tensor source = model.graph().findValue("w").initializer();
    try (SessionWeights weights = new SessionWeights(model, folder)) {
      Tensor first = null;
      for (int round = 0; round < 2; round++) {
        Model candidate = SharedTensors.copy(model);
        assertSame(source, candidate.graph().findValue("w").initializer(), "a copy shares the weights");
        Map<String, Tensor> sources = Map.of("w", source);
        Fp16Conversion.convert(candidate, Map.of(), Fp16Conversion.Options.defaults());
        weights.shareHalves(candidate, sources);
        Tensor half = candidate.graph().findValue("w").initializer();
        assertEquals(DataType.FLOAT16, half.dataType());
        if (first == null) {
          first = half;
        } else {
          assertSame(first, half, "the second candidate reuses the first one's float16 weight");
        }
      }
      ByteBuffer expected = HalfTensors.lazyHalf(source, "w", new ClampCounts()).bytes();
      ByteBuffer actual = first.bytes();
      assertEquals(expected, actual, "the same bytes the writer streams");
      assertEquals(0x7bff, actual.order(ByteOrder.LITTLE_ENDIAN).getShort(10) & 0xffff, "1e5 clamped to 65504");
      assertEquals(0x0001, actual.getShort(14) & 0xffff, "1e-9 clamped to the smallest subnormal");
    }
  }

  @Test
  void inGraphRangesAreTheExposedRangesAndNonFiniteValuesAreNamed() {
    // scale 1e36 makes "scaled" overflow to ±Inf in float32 (and y keeps +Inf): those two are named, not measured.
    for (float scale : new float[] {1f, 1e36f}) {
      Model model = model(scale);
      List<Value> values = model.graph().nodes().stream().map(Node::output).toList();
      Map<String, MixedPrecision.Range> exposed = new HashMap<>();
      try (SessionWeights weights = new SessionWeights(model, folder)) {
        Model all = SharedTensors.copy(model);
        MixedPrecision.expose(all, null);
        try (OrtCpu session = new OrtCpu(all, weights)) {
          session.run(feeds()).forEach((name, array) -> exposed.computeIfAbsent(name, key -> new MixedPrecision.Range())
              .add(array));
        }
        Model measured = SharedTensors.copy(model);
        RangeStatistics statistics = RangeStatistics.append(measured,
            measured.graph().nodes().stream().map(Node::output).toList(), Set.of("h", "y"));
        Set<String> nonFinite = new HashSet<>();
        Map<String, MixedPrecision.Range> ranges;
        try (OrtCpu session = new OrtCpu(measured, weights)) {
          ranges = statistics.ranges(session.runNumbers(feeds(), statistics.outputNames()), nonFinite);
        }
        for (Value value : values) {
          MixedPrecision.Range expected = exposed.get(value.name());
          if (expected.nonFinite > 0) {
            assertTrue(nonFinite.contains(value.name()), value.name());
            assertFalse(ranges.containsKey(value.name()));
            continue;
          }
          MixedPrecision.Range range = ranges.get(value.name());
          assertEquals(expected.maxAbs, range.maxAbs, 0, value.name());
          assertEquals(expected.minNonZero, range.minNonZero, 0, value.name());
          assertEquals(value.name().equals("scaled") ? 0 : expected.elements, range.elements, value.name());
          assertEquals(0, range.nonFinite);
        }
        assertEquals(scale == 1f ? Set.of() : Set.of("scaled", "y"), nonFinite);
      }
    }
  }

  @Test
  void inGraphComparisonGivesTheRelativeErrorOfTheArrays() {
    Model reference = model(1f);
    Model candidate = model(1.01f);
    try (SessionWeights weights = new SessionWeights(reference, folder)) {
      Model referenceExposed = SharedTensors.copy(reference);
      MixedPrecision.expose(referenceExposed, null);
      Model candidateExposed = SharedTensors.copy(candidate);
      MixedPrecision.expose(candidateExposed, null);
      Map<String, float[]> expected;
      Map<String, float[]> actual;
      try (OrtCpu one = new OrtCpu(referenceExposed, weights); OrtCpu other = new OrtCpu(candidateExposed, weights)) {
        expected = one.run(feeds());
        actual = other.run(feeds());
      }
      int[] sessions = {0};
      Map<String, Divergence.Measure> measured = Divergence.of(referenceExposed, candidateExposed)
          .measure(weights, new CalibrationSets.Set("set", feeds()), sessions);
      assertEquals(1, sessions[0]);
      assertEquals(Set.of("h", "scaled", "y"), measured.keySet());
      assertEquals(0, measured.get("h").error(), 0, "the same weights: h is identical");
      for (String name : List.of("scaled", "y")) {
        double error = MixedPrecision.relativeError(expected.get(name), actual.get(name));
        assertEquals(0.01, error, 1e-4, name);
        // The arrays' difference is taken in double, the graph's in float32: equal to float32's rounding.
        assertEquals(error, measured.get(name).error(), error * 1e-6, name);
        assertTrue(measured.get(name).expectedFinite() && measured.get(name).actualFinite());
      }
    }
  }
}
