package dev.kiln.validator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.testdata.Fixtures;
import dev.kiln.testdata.Opset;
import dev.kiln.validator.report.CheckResult;
import dev.kiln.validator.report.ComponentReport;
import dev.kiln.validator.report.ValidationReport;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/** Every committed fixture validates green at three sizes: every shape site proven, parity on its test data. */
class FixturesValidateTest {
  /** The components exported at opset 14 (the ControlNet fixtures are opset 17 only). */
  static java.util.List<String> components() {
    return Fixtures.manifest().components().values().stream().filter(component -> component.opsets().contains(Opset.V14))
        .map(dev.kiln.testdata.Manifest.Component::name).toList();
  }

  /** The components exported at opset 17 (the torch-2 SDPA form fixtures are opset 14 only). */
  static java.util.List<String> opset17Components() {
    return Fixtures.manifest().components().values().stream().filter(component -> component.opsets().contains(Opset.V17))
        .map(dev.kiln.testdata.Manifest.Component::name).toList();
  }

  private static void assertAllProven(ComponentReport component) {
    Map<?, ?> proof = (Map<?, ?>) component.getSummary().get("shapeProof");
    assertEquals(proof.get("sites"), proof.get("proven"), component.getName() + " " + proof);
    long sizes = component.getChecks().stream().filter(check -> check.check().equals("shapes")).count();
    assertEquals(3, sizes, component.getName());
  }

  @ParameterizedTest
  @MethodSource("opset17Components")
  void eachComponentAtOpset17PassesEveryCheckIncludingParityOnItsTestData(String name) {
    Path folder = Fixtures.component(name, Opset.V17).getParent();
    ValidationReport report = Validator.validate(folder, Validator.Options.defaults());
    assertTrue(report.isPassed(), report.firstFailure());
    ComponentReport component = report.getComponents().get(0);
    assertAllProven(component);
    int outputs = component.getSummary().get("outputShapes") instanceof Map<?, ?> shapes ? shapes.size() : 0;
    long parity = component.getChecks().stream().filter(check -> check.check().equals("parity")).count();
    assertEquals(2L * outputs, parity, "two test data sets x every output");
    for (CheckResult check : component.getChecks()) {
      if (check.check().equals("parity")) {
        assertTrue(((Number) check.metrics().get("maxRelative")).doubleValue() < 1e-3, check.toString());
      }
    }
  }

  @ParameterizedTest
  @MethodSource("components")
  void eachComponentAtOpset14ProvesItsShapes(String name) {
    ValidationReport report = Validator.validate(Fixtures.component(name, Opset.V14),
        Validator.Options.defaults().staticOnly(true));
    assertTrue(report.isPassed(), report.firstFailure());
    assertAllProven(report.getComponents().get(0));
  }

  @ParameterizedTest
  @ValueSource(strings = {"sd15", "sd2", "sdxl", "tiny-sd"})
  void everyPipelineProvesItsShapesAtThreeImageSizes(String pipeline) {
    ValidationReport report = Validator.validate(Fixtures.pipeline(pipeline), Validator.Options.defaults().staticOnly(true));
    assertTrue(report.isPassed(), report.firstFailure());
    for (ComponentReport component : report.getComponents()) {
      assertAllProven(component);
    }
  }
}
