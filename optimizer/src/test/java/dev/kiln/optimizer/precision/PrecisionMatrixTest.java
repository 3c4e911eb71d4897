package dev.kiln.optimizer.precision;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.optimizer.Optimizer;
import dev.kiln.optimizer.profiles.Target;
import dev.kiln.validator.parity.Metrics;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The matrix's blame: where a converted output misses 1e-2, the first tensor that diverges from the float32 graph of
 * the same target names the node. The whole matrix (4 pipelines × fp16/mixed × cpu/cuda × 3 sizes × 2 batches) is
 * bench/precision-matrix.sh; TinyPipelinePrecisionTest checks the tiny pipeline's mixed cells.
 */
class PrecisionMatrixTest {
  @TempDir Path temporary;

  @Test
  void naiveFp16UnetOverTheToleranceNamesItsFirstDivergingNode() {
    Path source = Path.of(System.getProperty("kiln.root", "..")).resolve("testdata/fixtures/unet/opset17/model.onnx");
    Path fp32 = temporary.resolve("fp32.onnx");
    Path fp16 = temporary.resolve("fp16.onnx");
    Optimizer.optimize(source, fp32, Optimizer.Options.of(Target.CPU));
    Optimizer.optimize(source, fp16, Optimizer.Options.of(Target.CPU).withPrecision(new PrecisionOptions(PrecisionOptions.Mode.FP16,
        Fp16Conversion.Options.defaults(), null, 1e-2)));
    CalibrationSets.Set set = CalibrationSets.read(source.getParent().resolve("..").normalize(),
        dev.kiln.graph.ModelReader.read(source)).get(0);
    Map<String, float[]> expected;
    Map<String, float[]> actual;
    try (OrtCpu session = new OrtCpu(source)) {
      expected = session.run(set.feeds());
    }
    Path proof = temporary.resolve("proof.onnx");
    dev.kiln.graph.ModelWriter.write(PrecisionMatrix.proofGraph(dev.kiln.graph.ModelReader.read(fp16), java.util.Set.of()), proof);
    try (OrtCpu session = new OrtCpu(proof)) {
      actual = session.run(set.feeds());
    }
    double error = Metrics.scaleRelativeError(expected.get("out_sample"), actual.get("out_sample"));
    // Naive fp16 of the SD 1.5 fixture UNet misses (PipelinePrecisionTest: 0.026-0.03): the time embedding's Sin,
    // whose arguments reach ~1000, loses its phase in float16 first.
    assertTrue(error > 1e-2, String.valueOf(error));
    String blame = PrecisionMatrix.blame(fp32, fp16, set, temporary);
    assertTrue(blame.startsWith("'/time_proj/Sin' (Sin) first diverges: '/time_proj/Sin_output_0' at "), blame);
  }

  @Test
  void twoRecordedCallsStackIntoABatchOfTwo() {
    CalibrationSets.Set first = new CalibrationSets.Set("a", Map.of("sample", new CalibrationSets.Feed(new long[] {2, 1}, new float[] {1, 2}),
        "timestep", new CalibrationSets.Feed(new long[] {}, new long[] {7})));
    CalibrationSets.Set other = new CalibrationSets.Set("b", Map.of("sample", new CalibrationSets.Feed(new long[] {2, 1}, new float[] {3, 4}),
        "timestep", new CalibrationSets.Feed(new long[] {}, new long[] {9})));
    CalibrationSets.Set same = new CalibrationSets.Set("c", Map.of("sample", new CalibrationSets.Feed(new long[] {2, 1}, new float[] {5, 6}),
        "timestep", new CalibrationSets.Feed(new long[] {}, new long[] {7})));
    CalibrationSets.Set stacked = PrecisionMatrix.stacked(List.of(first, same, other));
    // The partner shares the unbatched timestep: c, not b.
    assertEquals("a + c", stacked.name());
    assertEquals(List.of(1f, 2f, 5f, 6f), List.of(((float[]) stacked.feeds().get("sample").values())[0],
        ((float[]) stacked.feeds().get("sample").values())[1], ((float[]) stacked.feeds().get("sample").values())[2],
        ((float[]) stacked.feeds().get("sample").values())[3]));
    assertEquals(4, stacked.feeds().get("sample").shape()[0]);
    assertEquals(7, ((long[]) stacked.feeds().get("timestep").values())[0]);
  }
}
