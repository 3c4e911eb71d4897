package dev.kiln.optimizer.precision;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kiln.graph.DataType;
import dev.kiln.graph.Graph;
import dev.kiln.graph.Model;
import dev.kiln.graph.ModelWriter;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Value;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Calibration's chunked runs see exactly what one run exposing everything sees. */
class OrtCpuTest {
  @TempDir Path folder;

  @Test
  void chunkedRunsHandOverEveryOutputOnceWithTheSameValues() {
    // x → Relu → Neg → Exp → Sigmoid → Abs, every intermediate a graph output (as the calibration graph exposes them).
    Graph graph = new Graph("chain");
    Value value = graph.addInput("x", DataType.FLOAT, Shape.of(2, 3));
    List<String> names = new ArrayList<>();
    int index = 0;
    for (var op : List.of(Onnx.RELU, Onnx.NEG, Onnx.EXP, Onnx.SIGMOID, Onnx.ABS)) {
      Node node = Node.create(op, "/n" + index, List.of(value), "v" + index);
      graph.append(node);
      node.output().setType(DataType.FLOAT, Shape.of(2, 3));
      graph.addOutput(node.output());
      names.add(node.output().name());
      value = node.output();
      index++;
    }
    Model model = new Model(8, graph);
    model.opsetImports().put("", 17L);
    Path file = folder.resolve("chain.onnx");
    ModelWriter.write(model, file);
    Map<String, CalibrationSets.Feed> feeds = Map.of("x", new CalibrationSets.Feed(new long[] {2, 3},
        new float[] {-2, -1, 0, 0.5f, 1, 3}));
    try (OrtCpu session = new OrtCpu(file)) {
      Map<String, float[]> all = session.run(feeds);
      Map<String, float[]> chunked = new LinkedHashMap<>();
      int[] calls = {0};
      session.runEach(feeds, 2, (name, values) -> {
        calls[0]++;
        chunked.put(name, values);
      });
      assertEquals(5, calls[0]);
      assertEquals(names, List.copyOf(chunked.keySet()));
      names.forEach(name -> assertArrayEquals(all.get(name), chunked.get(name), name));
      assertEquals(Set.of("v4"), session.run(feeds, Set.of("v4")).keySet());
      assertArrayEquals(new float[] {0, 0, 0, 0.5f, 1, 3}, all.get("v0"));
    }
  }
}
