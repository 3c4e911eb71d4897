package dev.kiln.testdata;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.parallel.Isolated;

/** The name-based API resolves to the files the generator wrote and fails loudly otherwise. */
@Isolated("clears the kiln.root system property in one test")
class FixturesTest {
  @Test
  void componentsResolveToTheirOpsetFolders() {
    Path testdata = Fixtures.testdata();
    assertEquals(testdata.resolve("fixtures/unet/opset17/model.onnx"), Fixtures.unet(Opset.V17));
    assertEquals(testdata.resolve("fixtures/clip_text/opset14/model.onnx"), Fixtures.component("clip_text", Opset.V14));
    assertEquals(Fixtures.component("clip_text", Opset.V17), Fixtures.textEncoder(Opset.V17));
    assertEquals(testdata.resolve("fixtures/vae_decoder/model.pt"), Fixtures.torchScript("vae_decoder"));
    assertTrue(Files.isRegularFile(Fixtures.vaeEncoder(Opset.V14)));
    assertTrue(Files.isRegularFile(Fixtures.config("sdxl_unet")));
  }

  @Test
  void testDataSetsSitNextToEachOpsetExportInOnnxLayout() {
    List<TestDataSet> sets = Fixtures.testDataSets("unet");
    assertEquals(List.of("test_data_set_0", "test_data_set_1"), sets.stream().map(TestDataSet::name).toList());
    for (Opset opset : Opset.values()) {
      Path folder = Fixtures.unet(opset).getParent();
      for (TestDataSet set : sets) {
        for (StoredTensor tensor : set.inputs()) {
          Path viaOpsetFolder = folder.resolve(set.name()).resolve(tensor.path().getFileName());
          assertTrue(Files.isRegularFile(viaOpsetFolder), viaOpsetFolder.toString());
        }
      }
    }
    StoredTensor sample = sets.get(1).inputs().get(0);
    assertEquals("sample", sample.name());
    assertEquals(List.of(2L, 4L, 48L, 64L), sample.shape());
    assertEquals("float32", sample.dtype());
    assertEquals("int64", sets.get(0).inputs().get(1).dtype());
  }

  @Test
  void unknownNamesAreRefusedWithTheKnownOnes() {
    IllegalArgumentException component = assertThrows(IllegalArgumentException.class,
        () -> Fixtures.component("unet_xl", Opset.V17));
    assertTrue(component.getMessage().contains("'unet_xl'") && component.getMessage().contains("sdxl_unet"),
        component.getMessage());
    IllegalArgumentException pipeline = assertThrows(IllegalArgumentException.class, () -> Fixtures.pipeline("sd3"));
    assertTrue(pipeline.getMessage().contains("sd15"), pipeline.getMessage());
    assertThrows(IllegalArgumentException.class, () -> Fixtures.pipeline("../fixtures"));
    assertThrows(IllegalArgumentException.class, () -> Opset.of(18));
    IllegalArgumentException torchScript = assertThrows(IllegalArgumentException.class,
        () -> Fixtures.torchScript("unet_sdpa"));
    assertTrue(torchScript.getMessage().contains("no TorchScript"), torchScript.getMessage());
    assertThrows(IllegalArgumentException.class, () -> Fixtures.component("unet_sdpa", Opset.V17));
  }

  @Test
  void pipelinesResolveByFolderName() {
    assertTrue(Fixtures.pipelineNames().containsAll(List.of("sd15", "sd15-torchscript", "sd2", "sd2-torchscript",
        "sdxl", "sdxl-torchscript")), Fixtures.pipelineNames().toString());
    assertEquals(Fixtures.testdata().resolve("pipelines/sdxl"), Fixtures.pipeline("sdxl"));
  }

  @Test
  void aMissingRootPropertyFailsLoudly() {
    String saved = System.getProperty(Fixtures.ROOT_PROPERTY);
    try {
      System.clearProperty(Fixtures.ROOT_PROPERTY);
      IllegalStateException missing = assertThrows(IllegalStateException.class, () -> Fixtures.unet(Opset.V17));
      assertTrue(missing.getMessage().contains("kiln.root"), missing.getMessage());
      System.setProperty(Fixtures.ROOT_PROPERTY, "/nonexistent/kiln");
      IllegalStateException wrong = assertThrows(IllegalStateException.class, Fixtures::manifest);
      assertTrue(wrong.getMessage().contains("/nonexistent/kiln"), wrong.getMessage());
    } finally {
      System.setProperty(Fixtures.ROOT_PROPERTY, saved);
    }
  }
}
