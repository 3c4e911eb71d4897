package dev.kiln.testdata;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;

/** The overflow-prone VAE decoder documents fp16-overflowing activations while its image output stays sane. */
class OverflowFixtureTest {
  @Test
  void overflowReportListsNodesBeyondFp16RangeAndASaneOutput() {
    Manifest.Component component = Fixtures.manifest().component("vae_decoder_overflow");
    JsonNode report = component.json().path("overflow");
    assertEquals(65504.0, report.path("fp16_max").asDouble());
    JsonNode nodes = report.path("overflowing_module_outputs");
    // Only from the hot conv2 of the last up block on (the stream grows block by block up to ~2.5e4 before it; the
    // optimizer's OverflowVaeTest measures every tensor): the conv2 and the three ResNets' outputs.
    assertEquals(4, nodes.size(), nodes.toString());
    for (JsonNode node : nodes) {
      assertTrue(node.path("node").asText().startsWith("/decoder/up_blocks.3/"), node.toString());
      for (JsonNode value : node.path("max_abs_per_test_set")) {
        assertTrue(value.asDouble() > 65504.0, node.toString());
      }
    }
    for (JsonNode output : report.path("output_max_abs_per_test_set")) {
      assertTrue(output.asDouble() < 10.0, output.toString());
    }
    java.util.List<Manifest.OverflowNode> overflowing = component.overflowNodes();
    assertEquals(nodes.size(), overflowing.size());
    assertEquals("/decoder/up_blocks.3/resnets.0/conv2/Conv", overflowing.get(0).node());
    assertEquals("decoder.up_blocks.3.resnets.0.conv2", report.path("scaled_module").asText());
    assertTrue(overflowing.stream().allMatch(node -> node.maxAbs() > 65504.0 && node.maxAbs() < 1e6));
    assertEquals(java.util.List.of(), Fixtures.manifest().component("vae_decoder").overflowNodes());
    // same architecture as the normal decoder, so fusions see the same graph shape
    assertEquals(Fixtures.manifest().component("vae_decoder").onnx(Opset.V17).opHistogram(),
        component.onnx(Opset.V17).opHistogram());
  }
}
