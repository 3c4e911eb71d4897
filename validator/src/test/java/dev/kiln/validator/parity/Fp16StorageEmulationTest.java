package dev.kiln.validator.parity;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.graph.Attribute;
import dev.kiln.graph.DataType;
import dev.kiln.graph.Graph;
import dev.kiln.graph.Model;
import dev.kiln.graph.ModelWriter;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import dev.kiln.graph.Verifier;
import dev.kiln.validator.Validator;
import dev.kiln.validator.report.CheckResult;
import dev.kiln.validator.report.ValidationReport;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * x · 300 · 300: in float32 fine (90000 for x = 1), in float16 storage the product overflows 65504 to Inf. The
 * fp16 candidate stores its intermediate as float16; the judge must see the Inf that a GPU would produce.
 */
class Fp16StorageEmulationTest {
  @TempDir Path folder;

  static Model model(boolean half) {
    Graph graph = new Graph("scale");
    Value x = graph.addInput("x", DataType.FLOAT, Shape.of(1, 4));
    DataType type = half ? DataType.FLOAT16 : DataType.FLOAT;
    Value input = x;
    if (half) {
      Node cast = Node.create(Onnx.CAST, "/to_half", List.of(x), "x_half");
      cast.setAttribute(Attribute.ofInt("to", DataType.FLOAT16.number()));
      graph.append(cast);
      input = cast.output();
    }
    Tensor factor = half ? Tensor.ofFloat16(new long[] {1}, 300f) : Tensor.ofFloats(new long[] {1}, 300f);
    Value weight = graph.addInitializer("factor", factor);
    Node first = Node.create(Onnx.MUL, "/first", List.of(input, weight), "scaled");
    graph.append(first);
    Node second = Node.create(Onnx.MUL, "/second", List.of(first.output(), weight), "twice");
    graph.append(second);
    Value result = second.output();
    if (half) {
      Node back = Node.create(Onnx.CAST, "/to_float", List.of(result), "y");
      back.setAttribute(Attribute.ofInt("to", DataType.FLOAT.number()));
      graph.append(back);
      result = back.output();
    } else {
      Node identity = Node.create(Onnx.IDENTITY, "/out", List.of(result), "y");
      graph.append(identity);
      result = identity.output();
    }
    result.setType(DataType.FLOAT, Shape.of(1, 4));
    graph.addOutput(result);
    Model model = new Model(8, graph);
    model.opsetImports().put("", 17L);
    return model;
  }

  @Test
  void everyStoredHalfTensorGetsARoundingPairAndTheGraphIsFloat32() {
    Model model = model(true);
    assertTrue(Fp16StorageEmulation.applies(model));
    // x_half, scaled, twice: the three tensors the candidate stores as float16.
    assertEquals(3, Fp16StorageEmulation.apply(model));
    assertEquals(List.of(), Verifier.check(model));
    // The float16 weight stays float16 (a full-size model's weights stay half size, on disk) and is read through
    // one exact Cast(float32): both multiplications read the widened value, nothing reads the weight directly.
    Value factor = model.graph().findValue("factor");
    assertEquals(DataType.FLOAT16, factor.initializer().dataType());
    assertEquals(1, factor.uses().size());
    Node widen = factor.uses().get(0).node();
    assertTrue(widen.is(Onnx.CAST));
    assertEquals(DataType.FLOAT.number(), widen.intAttribute("to", 0));
    assertEquals(2, widen.output().uses().size());
    Map<String, float[]> outputs;
    try (OrtRun run = new OrtRun(CpuForm.bytes(model), "emulated")) {
      outputs = run.run(Map.of("x", new Input(new long[] {1, 4}, new float[] {1f, 0.5f, 0.1f, -1f})));
    }
    // 1·300·300 = 90000 overflows; 45000 rounds to 44992 (float16 steps by 32 there); 0.1 is 0.0999756 in float16,
    // ·300 = 29.9927 rounds to 30, ·300 = 9000 exactly.
    assertEquals(List.of(Float.POSITIVE_INFINITY, 44992f, 9000f, Float.NEGATIVE_INFINITY),
        List.of(outputs.get("y")[0], outputs.get("y")[1], outputs.get("y")[2], outputs.get("y")[3]));
  }

  @Test
  void theJudgeFailsTheOverflowingCandidate() {
    Path reference = folder.resolve("reference.onnx");
    Path candidate = folder.resolve("candidate.onnx");
    ModelWriter.write(model(false), reference);
    ModelWriter.write(model(true), candidate);
    ValidationReport report = Validator.validate(candidate, Validator.Options.defaults().withReference(reference));
    assertFalse(report.isPassed());
    CheckResult parity = report.getComponents().get(0).getChecks().stream()
        .filter(check -> check.check().equals("parity") && !check.passed()).findFirst().orElseThrow();
    assertTrue(parity.message().contains("NaN/Inf values (reference 0)"), parity.message());
  }
}
