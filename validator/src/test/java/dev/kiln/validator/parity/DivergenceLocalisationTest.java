package dev.kiln.validator.parity;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.graph.Attribute;
import dev.kiln.graph.Model;
import dev.kiln.graph.ModelReader;
import dev.kiln.graph.ModelWriter;
import dev.kiln.graph.Node;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import dev.kiln.testdata.Fixtures;
import dev.kiln.testdata.Opset;
import dev.kiln.validator.Validator;
import dev.kiln.validator.report.CheckResult;
import dev.kiln.validator.report.ComponentReport;
import dev.kiln.validator.report.Divergence;
import dev.kiln.validator.report.ValidationReport;
import dev.kiln.validator.shapes.SizeSpec;
import java.nio.file.Path;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A candidate with one wrong number fails parity, and localisation names the node that computes it first. */
class DivergenceLocalisationTest {
  @TempDir Path folder;

  private ValidationReport judge(Consumer<Model> damage) {
    Path original = Fixtures.vaeDecoder(Opset.V17);
    Model model = ModelReader.read(original);
    damage.accept(model);
    Path candidate = folder.resolve("candidate.onnx");
    ModelWriter.write(model, candidate);
    return Validator.validate(candidate, Validator.Options.defaults().withReference(original)
        .withShapes(SizeSpec.parse("height=8,12;width=8")));
  }

  private static Divergence only(ValidationReport report) {
    ComponentReport component = report.getComponents().get(0);
    assertFalse(component.isPassed());
    assertEquals(1, component.getDivergences().size());
    for (CheckResult check : component.getChecks()) {
      if (!check.check().equals("parity")) {
        assertTrue(check.passed(), check.toString());
      }
    }
    return component.getDivergences().get(0);
  }

  @Test
  void aZeroedAttentionBiasDivergesFirstAtItsProjection() {
    ValidationReport report = judge(model -> {
      Value bias = model.graph().findValue("decoder.mid_block.attentions.0.value.bias");
      Tensor tensor = bias.initializer();
      bias.setInitializer(Tensor.ofFloats(tensor.dims(), new float[(int) tensor.elementCount()]));
    });
    assertEquals(1, report.exitCode());
    Divergence divergence = only(report);
    assertEquals("/decoder/mid_block/attentions.0/value/Add", divergence.node());
    assertEquals("Add", divergence.op());
    assertEquals("batch=1 height=8 width=8 seed 0", divergence.size());
    assertTrue(divergence.maxAbs() > 1e-2, divergence.toString());
  }

  @Test
  void aFusedNodeWithANewOutputNameIsPairedAtItsBoundary() {
    // As a fusion would: the value projection's Add replaced by a node with its own output name (and the bias
    // lost); no reference tensor has that name, the consumer the two graphs share pairs it.
    ValidationReport report = judge(model -> {
      Value bias = model.graph().findValue("decoder.mid_block.attentions.0.value.bias");
      Tensor tensor = bias.initializer();
      bias.setInitializer(Tensor.ofFloats(tensor.dims(), new float[(int) tensor.elementCount()]));
      Node add = model.graph().findNode("/decoder/mid_block/attentions.0/value/Add");
      add.setName("/decoder/mid_block/attentions.0/FusedValue");
      add.output().setName("fused_value");
    });
    Divergence divergence = only(report);
    assertEquals("fused_value", divergence.tensor());
    assertEquals("/decoder/mid_block/attentions.0/value/Add_output_0", divergence.referenceTensor());
    assertEquals("/decoder/mid_block/attentions.0/FusedValue", divergence.node());
  }

  @Test
  void aChangedGroupNormEpsilonDivergesFirstAtThatNorm() {
    ValidationReport report = judge(model -> {
      Node norm = model.graph().findNode("/decoder/mid_block/attentions.0/group_norm/InstanceNormalization");
      norm.setAttribute(Attribute.ofFloat("epsilon", 0.5f));
    });
    Divergence divergence = only(report);
    assertEquals("/decoder/mid_block/attentions.0/group_norm/InstanceNormalization", divergence.node());
    assertEquals("InstanceNormalization", divergence.op());
    assertTrue(divergence.cosine() < 0.9999, divergence.toString());
  }

  @Test
  void theUndamagedModelPassesAtEverySize() {
    ValidationReport report = judge(model -> { });
    assertTrue(report.isPassed(), report.firstFailure());
    ComponentReport component = report.getComponents().get(0);
    // structure, ep-support, 2 sizes of shapes, 2 sizes x 1 output of parity
    assertEquals(6, component.getChecks().size());
    assertEquals(0, component.getDivergences().size());
  }
}
