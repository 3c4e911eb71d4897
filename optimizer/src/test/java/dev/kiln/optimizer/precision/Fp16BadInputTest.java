package dev.kiln.optimizer.precision;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.kiln.graph.Attribute;
import dev.kiln.graph.DataType;
import dev.kiln.graph.Graph;
import dev.kiln.graph.GraphPrinter;
import dev.kiln.graph.Model;
import dev.kiln.graph.ModelReader;
import dev.kiln.graph.ModelWriter;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import dev.kiln.graph.Verifier;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The bad inputs for --precision fp16: a model already in float16, bf16 and int8 tensors. */
class Fp16BadInputTest {
  private static final Fp16Conversion.Options DEFAULTS = Fp16Conversion.Options.defaults();

  @TempDir Path folder;

  private static Model model(Graph graph) {
    Model model = new Model(8, graph);
    model.opsetImports().put("", 17L);
    return model;
  }

  /** x[1,4] → Mul(w) → Relu → y, float32. */
  private static Model mulRelu() {
    Graph graph = new Graph("g");
    Value x = graph.addInput("x", DataType.FLOAT, Shape.of(1, 4));
    Value w = graph.addInitializer("w", Tensor.ofFloats(new long[] {1, 4}, 1, -2, 3e5f, 4));
    Node mul = Node.create(Onnx.MUL, "/mul", List.of(x, w), "m");
    graph.append(mul);
    Node relu = Node.create(Onnx.RELU, "/relu", List.of(mul.output()), "y");
    graph.append(relu);
    relu.output().setType(DataType.FLOAT, Shape.of(1, 4));
    graph.addOutput(relu.output());
    return model(graph);
  }

  @Test
  void aModelKilnAlreadyConvertedIsConvertedAsIsWithANote() {
    Model model = mulRelu();
    Fp16Conversion.convert(model, Map.of(), DEFAULTS);
    Path once = folder.resolve("once.onnx");
    ModelWriter.write(model, once);
    Model again = ModelReader.read(once);
    String before = GraphPrinter.print(again);
    PrecisionReport report = Fp16Conversion.convert(again, Map.of(), DEFAULTS);
    // float32 only at the interface Casts (--keep-io-types): nothing to convert, nothing changed, said so.
    assertEquals(before, GraphPrinter.print(again));
    assertEquals(List.of("the model is already float16 (float32 only at its interface Casts): converted as is"), report.notes());
    assertEquals(0, report.float16Nodes());
    assertEquals(Map.of(), report.clampedValues());
    Verifier.verify(again);
  }

  @Test
  void bfloat16WeightsReadThroughACastAreLeftAloneAndReported() {
    Graph graph = new Graph("g");
    Value x = graph.addInput("x", DataType.FLOAT, Shape.of(1, 4));
    Tensor bf16 = Tensor.ofBFloat16(new long[] {1, 4}, 1, 2, 3, 1e30f);
    Value w = graph.addInitializer("w_bf16", bf16);
    Node cast = Node.create(Onnx.CAST, "/cast", List.of(w), "w");
    cast.setAttribute(Attribute.ofInt("to", DataType.FLOAT.number()));
    graph.append(cast);
    Node mul = Node.create(Onnx.MUL, "/mul", List.of(x, cast.output()), "y");
    graph.append(mul);
    mul.output().setType(DataType.FLOAT, Shape.of(1, 4));
    graph.addOutput(mul.output());
    Model model = model(graph);
    PrecisionReport report = Fp16Conversion.convert(model, Map.of(), DEFAULTS);
    Value kept = model.graph().findValue("w_bf16");
    assertEquals(DataType.BFLOAT16, kept.initializer().dataType());
    assertArrayEquals(bytes(bf16), bytes(kept.initializer()));
    assertEquals(List.of("1 BFLOAT16 initializer(s) left as they are"), report.notes());
    // The Cast now makes float16 for the float16 Mul: the bf16 value 1e30 is not clamped (it is not converted).
    assertEquals(DataType.FLOAT16.number(), model.graph().findNode("/cast").intAttribute("to", 0));
    assertEquals(Map.of(), report.clampedValues());
    Verifier.verify(model);
  }

  @Test
  void int8WeightsBehindDequantizeLinearAreLeftAloneAndReported() {
    Graph graph = new Graph("g");
    Value x = graph.addInput("x", DataType.FLOAT, Shape.of(1, 4));
    Tensor int8 = Tensor.ofBytes(DataType.INT8, new long[] {1, 4}, new byte[] {1, -2, 127, -128});
    Value q = graph.addInitializer("w_int8", int8);
    Value scale = graph.addInitializer("w_scale", Tensor.ofFloats(new long[] {}, 1e-3f));
    Value zero = graph.addInitializer("w_zero", Tensor.ofBytes(DataType.INT8, new long[] {}, new byte[] {0}));
    Node dequantize = Node.create(Onnx.DEQUANTIZE_LINEAR, "/dq", List.of(q, scale, zero), "w");
    graph.append(dequantize);
    Node mul = Node.create(Onnx.MUL, "/mul", List.of(x, dequantize.output()), "y");
    graph.append(mul);
    mul.output().setType(DataType.FLOAT, Shape.of(1, 4));
    graph.addOutput(mul.output());
    Model model = model(graph);
    PrecisionReport report = Fp16Conversion.convert(model, Map.of(), DEFAULTS);
    assertArrayEquals(bytes(int8), bytes(model.graph().findValue("w_int8").initializer()));
    assertEquals(DataType.INT8, model.graph().findValue("w_zero").initializer().dataType());
    // The quantization scheme's float side (the scale, the DequantizeLinear) stays float32; the Mul after it converts.
    assertEquals(DataType.FLOAT, model.graph().findValue("w_scale").initializer().dataType());
    assertEquals("quantization boundary (int8 left alone)", report.float32().get("/dq").reason());
    assertEquals(1, report.float16Nodes());
    assertEquals(List.of("2 INT8 initializer(s) left as they are"), report.notes());
    Verifier.verify(model);
  }

  private static byte[] bytes(Tensor tensor) {
    ByteBuffer data = tensor.bytes();
    byte[] copy = new byte[data.remaining()];
    data.get(copy);
    return copy;
  }
}
