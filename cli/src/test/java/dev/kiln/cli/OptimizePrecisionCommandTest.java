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
    assertTrue(run.out().contains("precision mixed: 312 float16 nodes"), run.out());
    // Both counts: Kiln keeps the 10 nodes that read or write an overflowing tensor (and 9 Constants that must stay
    // float32: InstanceNormalization scales and biases, Resize scales), ModelOpt AutoCast's 512 rule would keep 91 for
    // no parity that matters (OverflowVaeTest measures both at each resolution).
    assertTrue(run.out().contains("312 float16 nodes, 19 float32"), run.out());
    assertTrue(run.out().contains("2 ORT sessions (10 computing nodes kept float32; a fixed 512 threshold would keep 91, worst output 0.00254)"), run.out());
    assertTrue(run.out().contains("float32 '/decoder/up_blocks.3/resnets.0/conv2/Conv' (Conv, max |x| 1.740e+05): "
        + "overflow: Conv output '/decoder/up_blocks.3/resnets.0/conv2/Conv_output_0' reaches 1.740e+05"), run.out());
    assertEquals(10, run.out().lines().filter(line -> line.startsWith("  float32 ") && line.contains("max |x|")).count(),
        run.out());
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
    assertTrue(run.err().contains("--precision fp8: expected fp32, fp16, mixed or int8"), run.err());
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

  @Test
  void int8ReportsKernelsBytesParityAndKeptLayers() throws Exception {
    var run = InspectCommandTest.run("optimize", OVERFLOW.toString(), "-o", folder.resolve("int8.onnx").toString(),
        "--target", "cpu", "--precision", "int8", "--int8-scheme", "full", "--json");
    assertEquals(0, run.exitCode(), run.err());
    JsonNode int8 = new ObjectMapper().readTree(run.out()).get("precision").get(folder.resolve("int8.onnx").toString())
        .get("int8");
    assertEquals("full", int8.get("scheme").asText());
    assertEquals("minmax", int8.get("ranges").asText());
    assertEquals("uint8", int8.get("activations").asText());
    // Every conv but post_quant_conv (reads the latents) and conv_out runs on ORT's QLinearConv.
    assertEquals(int8.get("int8Nodes").asInt() - int8.get("ortKernels").path("com.microsoft:MatMulIntegerToFloat").asInt(),
        int8.get("ortKernels").get("QLinearConv").asInt(), int8.toString());
    assertTrue(int8.get("floatKept").has("/decoder/conv_out/Conv"), int8.toString());
    assertTrue(int8.get("bytesAfter").asLong() < int8.get("bytesBefore").asLong() * 0.4, int8.toString());
    assertTrue(int8.get("parity").get("sample").asDouble() < 0.5, int8.toString());
  }

  @Test
  void int8IsForTheCpuTargetAndItsOptionsAreChecked() {
    var run = InspectCommandTest.run("optimize", OVERFLOW.toString(), "-o", folder.resolve("x.onnx").toString(),
        "--target", "cuda", "--precision", "int8");
    assertEquals(2, run.exitCode());
    assertTrue(run.err().contains("--precision int8 --target cuda: int8 QDQ targets ONNX Runtime's CPU provider"), run.err());
    run = InspectCommandTest.run("optimize", OVERFLOW.toString(), "-o", folder.resolve("x.onnx").toString(),
        "--target", "cpu", "--precision", "int8", "--int8-scheme", "int4");
    assertEquals(2, run.exitCode());
    assertTrue(run.err().contains("--int8-scheme int4: expected full, hybrid or weights"), run.err());
  }

  @Test
  void int8OnTheTinyPipelineCalibratesFromTheRunner() throws Exception {
    Path output = folder.resolve("tiny-int8");
    var run = InspectCommandTest.run("optimize", ROOT.resolve("testdata/pipelines/tiny-sd").toString(), "-o",
        output.toString(), "--target", "cpu", "--precision", "int8", "--json");
    assertEquals(0, run.exitCode(), run.err());
    JsonNode precision = new ObjectMapper().readTree(run.out()).get("precision");
    JsonNode unet = precision.get(output.resolve("unet/model.onnx").toString()).get("int8");
    assertTrue(unet.get("calibration").get("source").asText().startsWith("calibrated from the runner"), unet.toString());
    assertTrue(unet.get("calibration").get("heldOut").asBoolean());
    assertEquals(26, unet.get("ortKernels").get("QLinearConv").asInt(), unet.toString());
    assertEquals(40, unet.get("weightOnlyNodes").asInt());
    // Measured 0.033 on the held-out prompts.
    assertTrue(unet.get("parity").get("out_sample").asDouble() < 0.05, unet.toString());
    JsonNode decoder = precision.get(output.resolve("vae_decoder/model.onnx").toString()).get("int8");
    assertEquals(24, decoder.get("ortKernels").get("QLinearConv").asInt(), decoder.toString());
    JsonNode textEncoder = precision.get(output.resolve("text_encoder/model.onnx").toString()).get("int8");
    assertEquals(9, textEncoder.get("weightOnlyNodes").asInt(), textEncoder.toString());
    assertTrue(textEncoder.get("parity").get("last_hidden_state").asDouble() < 0.01, textEncoder.toString());
  }
}
