package dev.kiln.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.graph.ModelWriter;
import dev.kiln.graph.Tensor;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code kiln optimize --precision}: the report, --explain, and the refusals (exit 2). */
class OptimizePrecisionCommandTest {
  private static final Path ROOT = Path.of(System.getProperty("kiln.root", ".."));
  private static final Path OVERFLOW = ROOT.resolve("testdata/fixtures/vae_decoder_overflow/opset17/model.onnx");

  @TempDir Path folder;

  @Test
  void fp16ReportsNodesCastsAndBytes() throws Exception {
    var run = InspectCommandTest.run("optimize", OVERFLOW.toString(), "-o", folder.resolve("fp16.onnx").toString(),
        "--target", "cuda", "--precision", "fp16", "--block-op", "Resize", "--json");
    assertEquals(0, run.exitCode(), run.err());
    JsonNode precision = new ObjectMapper().readTree(run.out()).get("precision").get(folder.resolve("fp16.onnx").toString());
    assertEquals("fp16", precision.get("precision").asText());
    assertTrue(precision.get("float16Nodes").asInt() > 80, precision.toString());
    assertEquals("--block-op Resize", precision.get("float32").get("/decoder/up_blocks.0/upsamplers.0/Resize").get("reason").asText());
    assertTrue(precision.get("bytesSaved").asLong() > 400_000, precision.toString());
    assertTrue(Files.size(folder.resolve("fp16.onnx")) < Files.size(OVERFLOW) * 0.6);
  }

  @Test
  void mixedExplainsEveryFloat32Node() {
    var run = InspectCommandTest.run("optimize", OVERFLOW.toString(), "-o", folder.resolve("mixed.onnx").toString(),
        "--target", "cpu", "--precision", "mixed", "--explain");
    assertEquals(0, run.exitCode(), run.err());
    assertTrue(run.out().contains("precision mixed: 277 float16 nodes"), run.out());
    assertTrue(run.out().contains("2 ORT sessions"), run.out());
    assertTrue(run.out().contains("float32 '/decoder/up_blocks.1/resnets.0/conv2/Conv' (Conv, max |x| 1.346e+05): "
        + "overflow: Conv output '/decoder/up_blocks.1/resnets.0/conv2/Conv_output_0' reaches 1.346e+05"), run.out());
  }

  @Test
  void unknownBlockNodeAndBadPrecisionAreRefused() {
    var run = InspectCommandTest.run("optimize", OVERFLOW.toString(), "-o", folder.resolve("x.onnx").toString(),
        "--target", "cuda", "--precision", "fp16", "--block-node", "/no/such/node");
    assertEquals(2, run.exitCode());
    assertTrue(run.err().contains("--block-node '/no/such/node': no node of that name in the model"), run.err());
    run = InspectCommandTest.run("optimize", OVERFLOW.toString(), "-o", folder.resolve("x.onnx").toString(),
        "--target", "cuda", "--precision", "fp8");
    assertEquals(2, run.exitCode());
    assertTrue(run.err().contains("--precision fp8: expected fp32, fp16 or mixed"), run.err());
  }

  @Test
  void calibrationInputOfTheWrongShapeIsRefused() throws Exception {
    Path set = Files.createDirectories(folder.resolve("calibration/test_data_set_0"));
    Files.write(set.resolve("input_0.pb"), ModelWriter.tensorBytes(Tensor.ofFloats(new long[] {1, 3, 8, 8}, new float[192]),
        "latent_sample"));
    var run = InspectCommandTest.run("optimize", OVERFLOW.toString(), "-o", folder.resolve("x.onnx").toString(),
        "--target", "cpu", "--precision", "mixed", "--calibration", folder.resolve("calibration").toString());
    assertEquals(2, run.exitCode());
    assertTrue(run.err().contains("shape [1, 3, 8, 8] does not fit input 'latent_sample' of shape"), run.err());
    Files.write(set.resolve("input_0.pb"), ModelWriter.tensorBytes(Tensor.ofFloats(new long[] {1, 4, 8, 8}, new float[256]),
        "latents"));
    run = InspectCommandTest.run("optimize", OVERFLOW.toString(), "-o", folder.resolve("x.onnx").toString(),
        "--target", "cpu", "--precision", "mixed", "--calibration", folder.resolve("calibration").toString());
    assertEquals(2, run.exitCode());
    assertTrue(run.err().contains("holds 'latents', expected input 'latent_sample'"), run.err());
  }
}
