package dev.kiln.optimizer.quantize;

import dev.kiln.graph.Attribute;
import dev.kiln.graph.DataType;
import dev.kiln.graph.Graph;
import dev.kiln.graph.Model;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import dev.kiln.optimizer.precision.CalibrationSets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/** Small float graphs and seeded calibration sets for the quantizer's tests. */
final class SmallGraphs {
  private SmallGraphs() {}

  /** x[1,3,8,8] → Conv(3×3, bias) '/block/conv1/Conv' → Relu → Conv(1×1) '/block/conv_shortcut/Conv' → Relu → y. */
  static Model convs() {
    Random random = new Random(7);
    Graph graph = new Graph("convs");
    Value x = graph.addInput("x", DataType.FLOAT, Shape.of(1, 3, 8, 8));
    Value w1 = graph.addInitializer("w1", Tensor.ofFloats(new long[] {4, 3, 3, 3}, gaussian(random, 108, 0.3f)));
    Value b1 = graph.addInitializer("b1", Tensor.ofFloats(new long[] {4}, 0.1f, -0.2f, 0.05f, 0.3f));
    Node conv1 = Node.create(Onnx.CONV, "/block/conv1/Conv", List.of(x, w1, b1), "c1");
    conv1.setAttribute(Attribute.ofInts("pads", 1, 1, 1, 1));
    graph.append(conv1);
    Node relu1 = Node.create(Onnx.RELU, "/block/Relu", List.of(conv1.output()), "r1");
    graph.append(relu1);
    Value w2 = graph.addInitializer("w2", Tensor.ofFloats(new long[] {4, 4, 1, 1}, gaussian(random, 16, 0.5f)));
    Node conv2 = Node.create(Onnx.CONV, "/block/conv_shortcut/Conv", List.of(relu1.output(), w2), "c2");
    graph.append(conv2);
    Node relu2 = Node.create(Onnx.RELU, "/block/Relu_1", List.of(conv2.output()), "y");
    graph.append(relu2);
    relu2.output().setType(DataType.FLOAT, Shape.of(1, 4, 8, 8));
    graph.addOutput(relu2.output());
    return model(graph);
  }

  /** x[1,3,8,8] → Relu → Conv(3×3) '/out/Conv' → y: a conv writing the graph output, sharing its weight with none. */
  static Model convWritingOutput() {
    Random random = new Random(13);
    Graph graph = new Graph("last");
    Value x = graph.addInput("x", DataType.FLOAT, Shape.of(1, 3, 8, 8));
    Node relu = Node.create(Onnx.RELU, "/in/Relu", List.of(x), "r");
    graph.append(relu);
    Value w = graph.addInitializer("w", Tensor.ofFloats(new long[] {2, 3, 3, 3}, gaussian(random, 54, 0.3f)));
    Node conv = Node.create(Onnx.CONV, "/out/Conv", List.of(relu.output(), w), "y");
    conv.setAttribute(Attribute.ofInts("pads", 1, 1, 1, 1));
    graph.append(conv);
    conv.output().setType(DataType.FLOAT, Shape.of(1, 2, 8, 8));
    graph.addOutput(conv.output());
    return model(graph);
  }

  /**
   * x[1,8,4] → MatMul(W[4,6]) '/attn/to_q/MatMul' = q → MatMul(q, Transpose(q)) '/attn/MatMul' (attention scores:
   * both operands activations) → y[1,8,8].
   */
  static Model projectionAndScores() {
    Random random = new Random(11);
    Graph graph = new Graph("attention");
    Value x = graph.addInput("x", DataType.FLOAT, Shape.of(1, 8, 4));
    Value w = graph.addInitializer("w", Tensor.ofFloats(new long[] {4, 6}, gaussian(random, 24, 0.4f)));
    Node projection = Node.create(Onnx.MAT_MUL, "/attn/to_q/MatMul", List.of(x, w), "q");
    graph.append(projection);
    Node transpose = Node.create(Onnx.TRANSPOSE, "/attn/Transpose", List.of(projection.output()), "k");
    transpose.setAttribute(Attribute.ofInts("perm", 0, 2, 1));
    graph.append(transpose);
    Node scores = Node.create(Onnx.MAT_MUL, "/attn/MatMul", List.of(projection.output(), transpose.output()), "y");
    graph.append(scores);
    scores.output().setType(DataType.FLOAT, Shape.of(1, 8, 8));
    graph.addOutput(scores.output());
    return model(graph);
  }

  /** {@code count} sets of seeded Gaussian values for the model's one input {@code x}. */
  static List<CalibrationSets.Set> sets(Model model, int count, long seed) {
    Value input = model.graph().inputs().get(0);
    long[] shape = new long[input.shape().rank()];
    int elements = 1;
    for (int i = 0; i < shape.length; i++) {
      shape[i] = ((dev.kiln.graph.Shape.Known) input.shape().dim(i)).value();
      elements *= (int) shape[i];
    }
    Random random = new Random(seed);
    List<CalibrationSets.Set> sets = new ArrayList<>();
    for (int index = 0; index < count; index++) {
      Map<String, CalibrationSets.Feed> feeds = new LinkedHashMap<>();
      feeds.put(input.name(), new CalibrationSets.Feed(shape, gaussian(random, elements, 1f)));
      sets.add(new CalibrationSets.Set("test_data_set_" + index, feeds));
    }
    return sets;
  }

  static float[] gaussian(Random random, int count, float sigma) {
    float[] values = new float[count];
    for (int i = 0; i < count; i++) {
      values[i] = (float) (random.nextGaussian() * sigma);
    }
    return values;
  }

  private static Model model(Graph graph) {
    Model model = new Model(8, graph);
    model.opsetImports().put("", 17L);
    return model;
  }
}
