package dev.kiln.optimizer.quantize;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.graph.Model;
import dev.kiln.graph.ModelReader;
import dev.kiln.graph.Verifier;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * The trained tiny pipeline's UNet and VAE decoder, quantized with the defaults on their real denoising-loop inputs:
 * ORT loads the result and selects its int8 kernels, and the parity against float32 on held-out steps is bounded
 * by the numbers measured (printed to the log).
 */
class TinySdInt8Test {

  private static Model read(String component) {
    return ModelReader.read(TinyCalibration.PIPELINE.resolve(component).resolve("model.onnx"));
  }

  @Test
  void unetHybridRunsItsConvsOnQLinearConv() {
    Model unet = read("unet");
    Int8Report report = Int8Quantization.quantize(unet, TinyCalibration.unet(), "reference run", Int8Options.DEFAULT);
    Verifier.verify(unet);
    // Shape inference reads through the Q/DQ pairs (the validator's shape proofs rely on it): every quantized conv
    // still sees a rank-4 activation and weight, and every DequantizeLinear is float with its input's shape.
    dev.kiln.graph.infer.ShapeInference shapes = dev.kiln.graph.infer.ShapeInference.of(unet);
    int dequantized = 0;
    for (dev.kiln.graph.Node node : unet.graph().nodes()) {
      if (node.is(dev.kiln.graph.Onnx.CONV)) {
        assertEquals(4, shapes.shape(node.input(0)).rank(), node.name());
        assertEquals(4, shapes.shape(node.input(1)).rank(), node.name());
      }
      if (node.is(dev.kiln.graph.Onnx.DEQUANTIZE_LINEAR)) {
        dequantized++;
        assertEquals(dev.kiln.graph.DataType.FLOAT, shapes.dataType(node.output(0)), node.name());
        assertEquals(shapes.shape(node.input(0)).rank(), shapes.shape(node.output(0)).rank(), node.name());
      }
    }
    assertTrue(dequantized > 26, "DequantizeLinear nodes: " + dequantized);
    System.err.println("tiny-sd unet int8 hybrid: " + report.parity() + " " + report.ortKernels() + " bytes "
        + report.bytesBefore() + " -> " + report.bytesAfter());
    // 33 convs: conv_in, conv_out and the five shortcuts stay float; the 40 projection MatMuls hold int8 weights only.
    assertEquals(Set.of("/conv_in/Conv", "/conv_out/Conv", "/down_blocks.1/resnets.0/conv_shortcut/Conv",
        "/up_blocks.0/resnets.0/conv_shortcut/Conv", "/up_blocks.0/resnets.1/conv_shortcut/Conv",
        "/up_blocks.1/resnets.0/conv_shortcut/Conv", "/up_blocks.1/resnets.1/conv_shortcut/Conv"),
        report.floatKept().keySet());
    assertEquals(26, report.int8Nodes());
    assertEquals(40, report.weightOnlyNodes());
    assertEquals(26, report.ortKernels().get("QLinearConv"));
    assertEquals(List.of("step_0", "step_5", "step_11", "step_17"), report.calibration().calibrationSets());
    assertTrue(report.calibration().heldOut());
    // Measured 0.0497 on the held-out steps (weights-only alone: 0.0097).
    assertTrue(report.parity().get("out_sample") < 0.06, report.parity().toString());
    assertTrue(report.bytesAfter() < 0.4 * report.bytesBefore(), report.bytesAfter() + " of " + report.bytesBefore());
  }

  @Test
  void vaeDecoderFullRunsItsConvsOnQLinearConvAndItsProjectionOnMatMulIntegerToFloat() {
    Model decoder = read("vae_decoder");
    Int8Report report = Int8Quantization.quantize(decoder, TinyCalibration.vaeDecoder(), "reference run",
        Int8Options.DEFAULT.withScheme(Int8Options.Scheme.FULL));
    System.err.println("tiny-sd vae_decoder int8 full: " + report.parity() + " " + report.ortKernels());
    // 28 convs less post_quant_conv (reads the latents) and conv_out, two shortcuts; the 4 attention projections.
    assertEquals(4, report.floatKept().size());
    assertEquals(28, report.int8Nodes());
    assertEquals(24, report.ortKernels().get("QLinearConv"));
    assertEquals(4, report.ortKernels().get("com.microsoft:MatMulIntegerToFloat"));
    assertTrue(report.parity().get("sample") < 0.08, report.parity().toString()); // measured 0.063
  }
}
