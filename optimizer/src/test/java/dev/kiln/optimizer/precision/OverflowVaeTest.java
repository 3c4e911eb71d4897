package dev.kiln.optimizer.precision;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.graph.Model;
import dev.kiln.graph.ModelReader;
import dev.kiln.graph.ModelWriter;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Verifier;
import dev.kiln.optimizer.Optimizer;
import dev.kiln.optimizer.profiles.Target;
import dev.kiln.testdata.Fixtures;
import dev.kiln.testdata.Manifest;
import dev.kiln.validator.lowering.Lowering;
import dev.kiln.validator.parity.Fp16StorageEmulation;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The overflow-prone VAE decoder (activations of 1.0e5–1.75e5 in up_blocks 1–3): naive fp16 gives non-finite output
 * under fp16-storage emulation; mixed precision keeps exactly the overflowing nodes and their readers float32 and
 * stays within 1e-2 of float32 at both stored resolutions.
 */
class OverflowVaeTest {
  @TempDir Path temporary;

  static Path fixture() {
    return Path.of(System.getProperty("kiln.root", "..")).resolve("testdata/fixtures/vae_decoder_overflow/opset17/model.onnx");
  }

  private static Model optimized(Target target) {
    Model model = ModelReader.read(fixture());
    Optimizer.optimize(model, "vae_decoder_overflow", Optimizer.Options.of(target));
    return model;
  }

  /** Runs the emulation proof graph of {@code candidate} (lowered, Cast pairs at every float16 tensor) on a stored set. */
  private Map<String, float[]> emulated(Model candidate, CalibrationSets.Set set) {
    Path copy = temporary.resolve("copy.onnx");
    ModelWriter.write(candidate, copy);
    Model proof = ModelReader.read(copy);
    Lowering.forOrtCpu().lower(proof);
    assertTrue(Fp16StorageEmulation.apply(proof) > 0);
    Path file = temporary.resolve("proof.onnx");
    ModelWriter.write(proof, file);
    try (OrtCpu session = new OrtCpu(file)) {
      return session.run(set.feeds());
    }
  }

  private static float[] expected(int set) {
    return ModelReader.readTensor(fixture().getParent().resolve("test_data_set_" + set).resolve("output_0.pb")).floats();
  }

  private static boolean allFinite(float[] values) {
    for (float value : values) {
      if (!Float.isFinite(value)) {
        return false;
      }
    }
    return true;
  }

  @Test
  void naiveFloat16OverflowsUnderEmulationYetOrtLoadsIt() {
    Model model = optimized(Target.CPU);
    List<CalibrationSets.Set> sets = CalibrationSets.read(fixture().getParent(), model);
    PrecisionReport report = Fp16Conversion.convert(model, Map.of(), Fp16Conversion.Options.defaults());
    Verifier.verify(model);
    assertTrue(report.float16Nodes() > 200, report.toString());
    Path file = temporary.resolve("fp16.onnx");
    ModelWriter.write(model, file);
    try (OrtCpu session = new OrtCpu(file)) {
      // ORT's CPU provider runs it (and, computing in float32 between its own casts, even hides the overflow).
      assertEquals(1, session.run(sets.get(0).feeds()).size());
    }
    assertFalse(allFinite(emulated(model, sets.get(0)).get("sample")), "naive fp16 must overflow under emulation");
  }

  @Test
  void mixedKeepsExactlyTheOverflowingNodesAtTwoResolutions() {
    Model model = optimized(Target.CPU);
    List<CalibrationSets.Set> sets = CalibrationSets.read(fixture().getParent(), model);
    assertEquals(2, sets.size());
    PrecisionReport report = MixedPrecision.convert(model, sets, Fp16Conversion.Options.defaults(), 1e-2);
    Verifier.verify(model);
    // No Cast reads a Cast: no float32 -> float16 -> float32 round trip is left between two float32 nodes.
    for (dev.kiln.graph.Node node : model.graph().nodes()) {
      if (node.is(dev.kiln.graph.Onnx.CAST) && node.input(0).producer() != null) {
        assertFalse(node.input(0).producer().is(dev.kiln.graph.Onnx.CAST), node.name());
      }
    }
    assertTrue(report.castsRemoved() > 0 || report.castsInserted() > 0);
    for (int set = 0; set < 2; set++) {
      float[] actual = emulated(model, sets.get(set)).get("sample");
      assertTrue(allFinite(actual));
      double error = MixedPrecision.relativeError(expected(set), actual);
      assertTrue(error <= 1e-2, "set " + set + ": relative error " + error);
    }
    assertTrue(report.parity().get("sample") <= 1e-2, report.parity().toString());
    // Measured decisions (the Constants feeding float32 nodes are kept as a consequence, without a range).
    Map<String, PrecisionReport.KeptNode> measured = new TreeMap<>();
    report.float32().forEach((name, node) -> {
      if (node.maxAbs() != null) {
        measured.put(name, node);
      }
    });
    Set<String> scopes = new TreeSet<>();
    measured.keySet().forEach(name -> scopes.add(name.substring(0, name.lastIndexOf('/'))));
    // Every overflowing module of the manifest is kept...
    for (Manifest.OverflowNode node : Fixtures.manifest().component("vae_decoder_overflow").overflowNodes()) {
      String scope = "/" + node.module().replace('.', '/').replace("up/blocks", "up_blocks").replaceAll("/(\\d+)", ".$1");
      assertTrue(scopes.stream().anyMatch(kept -> kept.equals(scope) || kept.startsWith(scope + "/")), scope + " in " + scopes);
    }
    // ...and nothing else: the overflowing convolutions and residual Adds, the upsamplers' Resize of an overflowing
    // tensor, and the normalisations that read one (next block's norm1, conv_norm_out).
    assertEquals(new TreeSet<>(List.of(
        "/decoder/conv_norm_out",
        "/decoder/up_blocks.1/resnets.0", "/decoder/up_blocks.1/resnets.0/conv2", "/decoder/up_blocks.1/resnets.1",
        "/decoder/up_blocks.1/resnets.1/norm1", "/decoder/up_blocks.1/resnets.2", "/decoder/up_blocks.1/resnets.2/norm1",
        "/decoder/up_blocks.1/upsamplers.0", "/decoder/up_blocks.1/upsamplers.0/conv",
        "/decoder/up_blocks.2/resnets.0", "/decoder/up_blocks.2/resnets.0/norm1", "/decoder/up_blocks.2/resnets.1",
        "/decoder/up_blocks.2/resnets.1/norm1", "/decoder/up_blocks.2/resnets.2", "/decoder/up_blocks.2/resnets.2/norm1",
        "/decoder/up_blocks.2/upsamplers.0", "/decoder/up_blocks.2/upsamplers.0/conv",
        "/decoder/up_blocks.3/resnets.0", "/decoder/up_blocks.3/resnets.0/conv_shortcut",
        "/decoder/up_blocks.3/resnets.0/norm1", "/decoder/up_blocks.3/resnets.1", "/decoder/up_blocks.3/resnets.1/norm1",
        "/decoder/up_blocks.3/resnets.2", "/decoder/up_blocks.3/resnets.2/norm1")), scopes);
    assertEquals(33, measured.size());
    assertEquals(277, report.float16Nodes());
    // The fixed threshold (ModelOpt AutoCast: any recorded input or output over 512) on the same calibration keeps
    // as many: in this decoder no activation lies between 512 and the margin's 32752 — every tensor over 512 is one
    // that overflows float16 (the README has the histogram), so the two rules cannot differ here.
    assertEquals(33, report.threshold512Count());
    assertTrue(report.threshold512Parity().get("sample") <= 1e-2, report.threshold512Parity().toString());
    assertEquals(2, report.sessions(), "one calibration session and one verification: nothing needed refining");
    // Deterministic: a second run from the same input gives the same bytes and the same report.
    Model again = optimized(Target.CPU);
    PrecisionReport second = MixedPrecision.convert(again, sets, Fp16Conversion.Options.defaults(), 1e-2);
    org.junit.jupiter.api.Assertions.assertArrayEquals(ModelWriter.toBytes(model), ModelWriter.toBytes(again));
    assertEquals(report, second);
  }

  @Test
  void mixedForCudaIsFiniteThroughTheLowering() {
    Model model = optimized(Target.CUDA);
    List<CalibrationSets.Set> sets = CalibrationSets.read(fixture().getParent(), model);
    PrecisionReport report = MixedPrecision.convert(model, sets, Fp16Conversion.Options.defaults(), 1e-2);
    Verifier.verify(model);
    for (int set = 0; set < 2; set++) {
      float[] actual = emulated(model, sets.get(set)).get("sample");
      double error = MixedPrecision.relativeError(expected(set), actual);
      assertTrue(error <= 1e-2, "set " + set + ": relative error " + error + "; " + report.float32().keySet());
    }
  }
}
