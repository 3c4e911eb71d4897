package dev.kiln.validator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.graph.Model;
import dev.kiln.graph.ModelReader;
import dev.kiln.graph.ModelWriter;
import dev.kiln.graph.Value;
import dev.kiln.testdata.Fixtures;
import dev.kiln.testdata.Opset;
import dev.kiln.validator.report.CheckResult;
import dev.kiln.validator.report.ComponentReport;
import dev.kiln.validator.report.ValidationReport;
import dev.kiln.validator.shapes.ControlNetPairing;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The ControlNet pair in the validator: each model's shape proof and parity as for the UNet (the residual UNet's
 * residual inputs bound to the skip samples they are added to, the control image at 8x the latent), and the pair
 * check: at each size the proof covers, every ControlNet output has the shape of the skip sample its UNet input is
 * added to. A pair that disagrees in count or shape is a failed check naming the output and the input.
 */
class ControlNetPairingTest {
  @TempDir Path folder;

  private static Map<?, ?> proof(ComponentReport component) {
    return (Map<?, ?>) component.getSummary().get("shapeProof");
  }

  private static ComponentReport named(ValidationReport report, String name) {
    return report.getComponents().stream().filter(component -> component.getName().equals(name)).findFirst().orElseThrow();
  }

  @Test
  void theFixturePairProvesEveryShapeAndTheirResidualsMatchAtThreeImageSizes() {
    ValidationReport report = Validator.validate(Fixtures.controlNetPair(folder.resolve("pair")),
        Validator.Options.defaults().staticOnly(true));
    assertTrue(report.isPassed(), report.firstFailure());
    assertEquals(List.of("controlnet", "unet", "controlnet+unet"), report.getComponents().stream().map(ComponentReport::getName).toList());
    ComponentReport controlnet = named(report, "controlnet");
    ComponentReport unet = named(report, "unet");
    assertEquals("controlnet", controlnet.getKind());
    assertEquals("unet", unet.getKind());
    for (ComponentReport component : List.of(controlnet, unet)) {
      assertEquals(proof(component).get("sites"), proof(component).get("proven"), component.getName() + " " + proof(component));
    }
    System.out.println("controlnet shape proof " + proof(controlnet) + "; residual unet " + proof(unet));
    assertEquals(SITES, List.of(proof(controlnet).get("sites"), proof(unet).get("sites")));
    List<CheckResult> pairs = named(report, "controlnet+unet").getChecks();
    assertEquals(List.of("batch=1 height=512 width=512 (latent 64x64)", "batch=2 height=768 width=512 (latent 96x64)",
        "batch=1 height=512 width=768 (latent 64x96)"), pairs.stream().map(CheckResult::size).toList());
    for (CheckResult check : pairs) {
      assertTrue(check.passed(), check.toString());
      assertEquals("10 residuals match the UNet's skip samples", check.message());
    }
  }

  /** Shape-proof sites: controlnet, residual UNet (opset-17 fixtures). */
  private static final List<Object> SITES = List.of(640, 1336);

  @Test
  void eachModelPassesParityOnItsTestData() {
    for (String name : List.of("controlnet", "unet_controlnet")) {
      ValidationReport report = Validator.validate(Fixtures.component(name, Opset.V17), Validator.Options.defaults());
      assertTrue(report.isPassed(), report.firstFailure());
      long parity = report.getComponents().get(0).getChecks().stream().filter(check -> check.check().equals("parity")).count();
      int outputs = Fixtures.manifest().component(name).outputs().size();
      assertEquals(2L * outputs, parity, name);
    }
  }

  @Test
  void aUnetWithoutResidualInputsFailsThePair() throws Exception {
    Path pair = Fixtures.controlNetPair(folder.resolve("plain"));
    Files.delete(pair.resolve("unet/model.onnx"));
    Files.createSymbolicLink(pair.resolve("unet/model.onnx"), Fixtures.component("unet", Opset.V17).toAbsolutePath());
    ValidationReport report = Validator.validate(pair, Validator.Options.defaults().staticOnly(true));
    assertFalse(report.isPassed());
    assertEquals(1, report.exitCode());
    CheckResult failed = named(report, "controlnet+unet").getChecks().get(0);
    assertEquals(ControlNetPairing.CHECK, failed.check());
    assertTrue(failed.message().endsWith(": the UNet has no down_block_additional_residuals_K / mid_block_additional_residual"
        + " inputs for the ControlNet's 10 residual outputs"), failed.message());
  }

  @Test
  void aMissingResidualOutputNamesTheInputLeftWithoutOne() throws Exception {
    Path pair = controlNetWith(model -> model.graph().removeOutput(indexOf(model, "down_block_res_samples_8")));
    CheckResult failed = onlyPairCheck(pair);
    assertEquals("UNet input \"down_block_additional_residuals_8\" has no ControlNet output \"down_block_res_samples_8\""
        + " (the ControlNet has 9 residual outputs, the UNet 10 residual inputs)", failed.message());
  }

  @Test
  void residualsOfTheWrongShapeAreNamedWithBothShapesAtEverySize() throws Exception {
    // Outputs 3 and 4 swapped: the downsampler's 16 channels and the next block's first ResNet's 32.
    Path pair = controlNetWith(model -> {
      Value third = model.graph().outputs().get(indexOf(model, "down_block_res_samples_3"));
      Value fourth = model.graph().outputs().get(indexOf(model, "down_block_res_samples_4"));
      third.setName("swapped");
      fourth.setName("down_block_res_samples_3");
      third.setName("down_block_res_samples_4");
    });
    ValidationReport report = Validator.validate(pair, Validator.Options.defaults().staticOnly(true));
    assertEquals(1, report.exitCode());
    List<CheckResult> checks = named(report, "controlnet+unet").getChecks();
    assertEquals(3, checks.size());
    assertFalse(checks.get(0).passed());
    assertEquals("down_block_res_samples_3", checks.get(0).output());
    assertEquals("ControlNet output \"down_block_res_samples_3\" is [1,32,32,32] but UNet input "
        + "\"down_block_additional_residuals_3\" is added to a skip sample of [1,16,32,32] at batch=1 height=512 width=512 "
        + "(latent 64x64)", checks.get(0).message());
  }

  private Path controlNetWith(java.util.function.Consumer<Model> change) throws Exception {
    Path pair = Fixtures.controlNetPair(folder.resolve("changed"));
    Model model = ModelReader.read(Fixtures.component("controlnet", Opset.V17));
    change.accept(model);
    Files.delete(pair.resolve("controlnet/model.onnx"));
    ModelWriter.write(model, pair.resolve("controlnet/model.onnx"));
    return pair;
  }

  private static int indexOf(Model model, String output) {
    for (int index = 0; index < model.graph().outputs().size(); index++) {
      if (model.graph().outputs().get(index).name().equals(output)) {
        return index;
      }
    }
    throw new AssertionError("no output " + output);
  }

  private static CheckResult onlyPairCheck(Path pair) {
    ValidationReport report = Validator.validate(pair, Validator.Options.defaults().staticOnly(true));
    assertEquals(1, report.exitCode());
    List<CheckResult> checks = named(report, "controlnet+unet").getChecks();
    assertEquals(1, checks.size(), checks.toString());
    assertFalse(checks.get(0).passed());
    return checks.get(0);
  }
}
