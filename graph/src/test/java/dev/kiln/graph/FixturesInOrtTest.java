package dev.kiln.graph;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtLoggingLevel;
import ai.onnxruntime.OrtSession;
import com.fasterxml.jackson.databind.JsonNode;
import dev.kiln.testdata.Fixtures;
import dev.kiln.testdata.Manifest;
import dev.kiln.testdata.Opset;
import dev.kiln.testdata.StoredTensor;
import dev.kiln.testdata.TestDataSet;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every committed ONNX fixture is readable by Kiln's reader, passes the verifier, and computes in ONNX Runtime (CPU)
 * what torch computed for its stored test data sets (max abs error ≤ 1e-4 of the output's largest |value|).
 * This is what makes the fixtures a trustworthy baseline for rewrites: if it fails, the generator or the exporter
 * produced something ORT does not agree with, and no fusion test on that fixture means anything.
 */
class FixturesInOrtTest {
  private static final double RELATIVE_TOLERANCE = 1e-4;
  private static final OrtEnvironment ENVIRONMENT =
      OrtEnvironment.getEnvironment(OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR, "kiln-fixtures-test");

  static Stream<Arguments> exports() {
    List<Arguments> exports = new ArrayList<>();
    for (String name : Fixtures.componentNames()) {
      for (Opset opset : Fixtures.manifest().component(name).opsets()) {
        exports.add(Arguments.of(name, opset));
      }
    }
    return exports.stream();
  }

  @ParameterizedTest(name = "{0} opset {1}")
  @MethodSource("exports")
  void kilnReadsAndVerifiesTheExport(String name, Opset opset) {
    Manifest.Component component = Fixtures.manifest().component(name);
    Model model = ModelReader.read(Fixtures.component(name, opset));
    assertEquals(List.of(), Verifier.check(model), name);
    assertEquals(opset.version(), model.opsetVersion(""), name);
    Graph graph = model.graph();
    assertEquals(component.onnx(opset).nodes(), graph.nodes().size(), name);
    assertEquals(component.onnx(opset).initializers(), graph.initializers().size(), name);
    assertEquals(component.inputs(), graph.inputs().stream().map(Value::name).toList(), name);
    assertEquals(component.outputs(), graph.outputs().stream().map(Value::name).toList(), name);
    Map<String, Integer> histogram = new LinkedHashMap<>();
    for (Node node : graph.nodes()) {
      histogram.merge(node.opType().name(), 1, Integer::sum);
    }
    assertEquals(component.onnx(opset).opHistogram(), histogram.entrySet().stream()
        .sorted(Map.Entry.<String, Integer>comparingByValue().reversed().thenComparing(Map.Entry.comparingByKey()))
        .collect(LinkedHashMap::new, (map, entry) -> map.put(entry.getKey(), entry.getValue()), Map::putAll), name);
    for (JsonNode overflowing : component.json().path("overflow").path("overflowing_module_outputs")) {
      assertNotNull(graph.findNode(overflowing.path("node").asText()), "overflow node " + overflowing);
    }
  }

  @ParameterizedTest(name = "{0} opset {1}")
  @MethodSource("exports")
  void onnxRuntimeReproducesTheStoredOutputs(String name, Opset opset) throws OrtException {
    Path model = Fixtures.component(name, opset);
    try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
      options.setIntraOpNumThreads(2);
      options.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.BASIC_OPT);
      try (OrtSession session = ENVIRONMENT.createSession(model.toString(), options)) {
        for (TestDataSet set : Fixtures.testDataSets(name)) {
          Map<String, OnnxTensor> feeds = new LinkedHashMap<>();
          try {
            for (StoredTensor input : set.inputs()) {
              feeds.put(input.name(), toOrt(ModelReader.readTensor(input.path())));
            }
            try (OrtSession.Result result = session.run(feeds)) {
              for (StoredTensor output : set.outputs()) {
                Tensor expected = ModelReader.readTensor(output.path());
                OnnxTensor actual = (OnnxTensor) result.get(output.name()).orElseThrow();
                String where = name + " opset " + opset.version() + " " + set.name() + " " + output.name();
                assertEquals(Arrays.toString(expected.dims()), Arrays.toString(actual.getInfo().getShape()), where);
                assertClose(expected.floats(), actual.getFloatBuffer(), output.maxAbs(), where);
              }
            }
          } finally {
            feeds.values().forEach(OnnxTensor::close);
          }
        }
      }
    }
  }

  private static void assertClose(float[] expected, FloatBuffer actual, double recordedMaxAbs, String where) {
    assertEquals(expected.length, actual.remaining(), where);
    double scale = 0;
    double worst = 0;
    int worstIndex = -1;
    for (int index = 0; index < expected.length; index++) {
      scale = Math.max(scale, Math.abs(expected[index]));
      double error = Math.abs(expected[index] - actual.get(index));
      if (!(error <= worst)) {
        worst = error;
        worstIndex = index;
      }
    }
    assertEquals(recordedMaxAbs, scale, 1e-6 * scale, where + ": stored output differs from the manifest's max_abs");
    assertTrue(worst <= RELATIVE_TOLERANCE * scale, where + ": max abs error " + worst + " at " + worstIndex
        + " exceeds " + RELATIVE_TOLERANCE + " x output scale " + scale);
  }

  private static OnnxTensor toOrt(Tensor tensor) throws OrtException {
    ByteBuffer data = ByteBuffer.allocateDirect((int) tensor.byteSize()).order(ByteOrder.LITTLE_ENDIAN);
    data.put(tensor.bytes().duplicate().order(ByteOrder.LITTLE_ENDIAN));
    data.flip();
    long[] shape = tensor.dims();
    return switch (tensor.dataType()) {
      case FLOAT -> OnnxTensor.createTensor(ENVIRONMENT, data.asFloatBuffer(), shape);
      case INT64 -> OnnxTensor.createTensor(ENVIRONMENT, data.asLongBuffer(), shape);
      case INT32 -> OnnxTensor.createTensor(ENVIRONMENT, data.asIntBuffer(), shape);
      default -> throw new IllegalArgumentException("fixture inputs are float32, int64 or int32, not "
          + tensor.dataType());
    };
  }
}
