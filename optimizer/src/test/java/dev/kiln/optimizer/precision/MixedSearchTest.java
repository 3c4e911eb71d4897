package dev.kiln.optimizer.precision;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.graph.DataType;
import dev.kiln.graph.Graph;
import dev.kiln.graph.Model;
import dev.kiln.graph.ModelWriter;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The verify-and-refine loop on small graphs: an error accumulated from many roundings (no single origin) is spread
 * over modules by their measured contributions; a Sin whose argument grows beyond what calibration saw is found by
 * localisation, at the node where the divergence is born.
 */
class MixedSearchTest {
  private static final int WIDTH = 64;

  /** x[1,64] → 12 residual blocks h + tanh(h·W) → y, named /blocks.i/... like an exported module tree. */
  private static Model residualChain() {
    Random random = new Random(7);
    Graph graph = new Graph("g");
    Value h = graph.addInput("x", DataType.FLOAT, Shape.of(1, WIDTH));
    for (int block = 0; block < 12; block++) {
      float[] weights = new float[WIDTH * WIDTH];
      for (int i = 0; i < weights.length; i++) {
        weights[i] = (float) (random.nextGaussian() * 1.6 / Math.sqrt(WIDTH));
      }
      String scope = "/blocks." + block;
      Value w = graph.addInitializer(scope + ".weight", Tensor.ofFloats(new long[] {WIDTH, WIDTH}, weights));
      Node matMul = Node.create(Onnx.MAT_MUL, scope + "/linear/MatMul", List.of(h, w), scope + "/linear/MatMul_output_0");
      graph.append(matMul);
      Node tanh = Node.create(Onnx.TANH, scope + "/act/Tanh", List.of(matMul.output()), scope + "/act/Tanh_output_0");
      graph.append(tanh);
      Node add = Node.create(Onnx.ADD, scope + "/Add", List.of(h, tanh.output()), scope + "/Add_output_0");
      graph.append(add);
      h = add.output();
    }
    Node out = Node.create(Onnx.IDENTITY, "/out", List.of(h), "y");
    graph.append(out);
    out.output().setType(DataType.FLOAT, Shape.of(1, WIDTH));
    graph.addOutput(out.output());
    Model model = new Model(8, graph);
    model.opsetImports().put("", 17L);
    return model;
  }

  private static List<CalibrationSets.Set> sets(long seed, double scale, int count) {
    Random random = new Random(seed);
    List<CalibrationSets.Set> sets = new java.util.ArrayList<>();
    for (int set = 0; set < count; set++) {
      float[] values = new float[WIDTH];
      for (int i = 0; i < WIDTH; i++) {
        values[i] = (float) (random.nextGaussian() * scale);
      }
      sets.add(new CalibrationSets.Set("set " + set, Map.of("x", new CalibrationSets.Feed(new long[] {1, WIDTH}, values))));
    }
    return sets;
  }

  @Test
  void accumulatedRoundingIsSpreadOverTheModulesThatContributeMost() {
    double tolerance = 1e-3;
    Model naive = residualChain();
    PrecisionReport fp16 = MixedPrecision.convert(residualChain(), sets(1, 1, 2), Fp16Conversion.Options.defaults(), 1);
    assertEquals(37, fp16.float16Nodes(), "with a loose tolerance nothing is kept");
    assertTrue(fp16.parity().get("y") > tolerance, "naive float16 misses 1e-3: " + fp16.parity());
    PrecisionReport report = MixedPrecision.convert(naive, sets(1, 1, 2), Fp16Conversion.Options.defaults(), tolerance);
    assertTrue(report.parity().get("y") <= tolerance, report.parity().toString());
    long modules = report.float32().values().stream()
        .filter(node -> node.reason().startsWith("verification: rounding module '/blocks.")).count();
    assertTrue(modules > 0 && modules % 3 == 0, "whole modules (3 nodes each) are kept: " + report.float32().keySet());
    assertTrue(report.float16Nodes() > 0, "not everything: " + report.float32().keySet());
    // Measured: naive 1.3e-3; 7 of 12 blocks kept, 7.1e-4. Sessions: calibration, 3 verifications, one localisation
    // (float32 and candidate compared in one graph; no single origin), 13 modules measured, and the comparison's
    // verification is not counted.
    assertEquals(21, modules);
    assertEquals(16, report.float16Nodes());
    assertEquals(20, report.sessions());
    assertEquals(0, report.threshold512Count(), "no activation reaches 512");
    assertTrue(report.threshold512Parity().get("y") > tolerance, "the fixed threshold keeps nothing and misses");
  }

  @Test
  void aSinWhoseArgumentOutgrowsCalibrationIsLocalisedWhereTheDivergenceStarts() {
    // x → Mul(60) "/scale" → Sin "/phase" → y. Calibration inputs reach |x| ≈ 0.25 (arguments 15: float16 keeps
    // the phase to 0.0073, so the ranges alone keep nothing); the held-out set reaches |x| ≈ 3 (arguments 180).
    Graph graph = new Graph("g");
    Value x = graph.addInput("x", DataType.FLOAT, Shape.of(1, WIDTH));
    Value w = graph.addInitializer("w", Tensor.ofFloats(new long[] {1}, 60f));
    Node scale = Node.create(Onnx.MUL, "/scale", List.of(x, w), "argument");
    graph.append(scale);
    Node sin = Node.create(Onnx.SIN, "/phase", List.of(scale.output()), "y");
    graph.append(sin);
    sin.output().setType(DataType.FLOAT, Shape.of(1, WIDTH));
    graph.addOutput(sin.output());
    Model model = new Model(8, graph);
    model.opsetImports().put("", 17L);
    List<CalibrationSets.Set> sets = new java.util.ArrayList<>();
    sets.add(sets(3, 0.08, 1).get(0));
    sets.add(sets(4, 1.0, 1).get(0));
    sets.add(sets(5, 0.08, 1).get(0));
    sets.add(sets(6, 1.0, 1).get(0));
    PrecisionReport report = MixedPrecision.convert(model, sets, Fp16Conversion.Options.defaults(), 1e-2);
    assertTrue(report.parity().get("y") <= 1e-2, report.parity().toString());
    assertEquals(List.of("/scale", "/phase"), List.copyOf(report.float32().keySet()));
    assertTrue(report.float32().get("/phase").reason().startsWith("verification: its output 'y' is where the divergence "
        + "starts on set 0 (born here, relative error 0.0425"), report.float32().toString());
    assertTrue(report.float32().get("/scale").reason().startsWith("verification: makes an input of float32 '/phase'"),
        report.float32().toString());
    assertEquals(1.0, report.float32().get("/phase").maxAbs(), 1e-3, "the measured range of the Sin's output");
    // Calibration, verification, localisation (float32 and candidate in one graph), verification, localisation,
    // verification.
    assertEquals(6, report.sessions());
    assertTrue(report.threshold512Parity().get("y") > 1e-2, "the fixed threshold sees no value over 512");
  }
}
