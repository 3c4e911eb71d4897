package dev.kiln.exporter;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.graph.Model;
import dev.kiln.graph.ModelReader;
import dev.kiln.graph.Value;
import dev.kiln.testdata.Fixtures;
import dev.kiln.testdata.Opset;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The ControlNet pair from TorchScript: the ControlNet (conditioning embedding, 1x1 zero convolutions, a scalar
 * conditioning scale) and the UNet whose forward takes the residuals get exactly the I/O names, element types and
 * ranks of torch.onnx.export's committed graphs (diffusers' names, tuples flattened with _K). Numeric parity against
 * torch: {@link FixtureParityTest} and {@link LibtorchParityTest}, which take every TorchScript fixture.
 */
class ControlNetExportTest {
  private static void assertSameInterface(String name, String kind) {
    ExportResult result = TorchScriptExporter.export(Fixtures.torchScript(name), kind, 17);
    Model reference = ModelReader.read(Fixtures.component(name, Opset.V17));
    assertEquals(names(reference.graph().inputs()), names(result.model().graph().inputs()), name + " inputs");
    assertEquals(names(reference.graph().outputs()), names(result.model().graph().outputs()), name + " outputs");
    for (int index = 0; index < reference.graph().inputs().size(); index++) {
      Value expected = reference.graph().inputs().get(index);
      Value actual = result.model().graph().inputs().get(index);
      assertEquals(expected.dataType(), actual.dataType(), actual.name());
      assertEquals(expected.shape().rank(), actual.shape().rank(), actual.name());
    }
    assertTrue(result.warnings().isEmpty(), name + ": " + result.warnings());
  }

  private static List<String> names(List<Value> values) {
    return values.stream().filter(value -> !value.isInitializer()).map(Value::name).toList();
  }

  @Test
  void theControlNetKeepsDiffusersNames() {
    assertEquals("controlnet", ComponentSpec.guess("controlnet"));
    assertSameInterface("controlnet", "controlnet");
  }

  @Test
  void theUnetTakingResidualsNamesThemByPosition() {
    // A folder named unet, or the fixture's name: either way a UNet, whose extra inputs are the residuals.
    assertEquals("unet", ComponentSpec.guess("unet_controlnet"));
    assertSameInterface("unet_controlnet", "unet");
  }

  @Test
  void theOrdinaryUnetsKeepTheirInputs() {
    assertEquals(List.of("sample", "timestep", "encoder_hidden_states", "text_embeds", "time_ids"),
        names(TorchScriptExporter.export(Fixtures.torchScript("sdxl_unet"), "unet", 17).model().graph().inputs()));
    assertEquals(List.of("sample", "timestep", "encoder_hidden_states"),
        names(TorchScriptExporter.export(Fixtures.torchScript("unet"), "unet", 17).model().graph().inputs()));
  }
}
