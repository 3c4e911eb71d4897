package dev.kiln.validator.parity;

import dev.kiln.graph.Attribute;
import dev.kiln.graph.DataType;
import dev.kiln.graph.Graph;
import dev.kiln.graph.Model;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import dev.kiln.graph.infer.ShapeInference;
import java.util.ArrayList;
import java.util.List;

/**
 * Turns an fp16 or mixed-precision candidate into a float32 proof graph in which every tensor the candidate
 * stores as float16 passes through an explicit Cast(float16) → Cast(float32) pair. ORT's CPU provider computes
 * many fp16 ops in float32 internally and hides overflow; with the pairs, each stored tensor is rounded (and
 * overflows to ±Inf) exactly where the candidate would store it, and the arithmetic in between is float32.
 * The precision work reuses this harness.
 */
public final class Fp16StorageEmulation {
  private Fp16StorageEmulation() {}

  /** Whether {@code model} has any float16 tensor (initializer, input, or inferred value). */
  public static boolean applies(Model model) {
    ShapeInference types = ShapeInference.of(model);
    for (Value value : model.graph().initializers()) {
      if (value.initializer().dataType() == DataType.FLOAT16) {
        return true;
      }
    }
    for (Value input : model.graph().inputs()) {
      if (input.dataType() == DataType.FLOAT16) {
        return true;
      }
    }
    for (Node node : model.graph().nodes()) {
      for (Value output : node.outputs()) {
        if (output != null && types.dataType(output) == DataType.FLOAT16) {
          return true;
        }
      }
    }
    return false;
  }

  /**
   * Rewrites {@code model} in place; returns how many rounding pairs it inserted (the exact widening Casts after
   * float16 weights are not counted: they round nothing).
   */
  public static int apply(Model model) {
    Graph graph = model.graph();
    ShapeInference types = ShapeInference.of(model);
    List<Value> stored = new ArrayList<>();
    List<Value> halfWeights = new ArrayList<>();
    for (Value value : new ArrayList<>(graph.initializers())) {
      Tensor tensor = value.initializer();
      if (tensor.dataType() == DataType.FLOAT16) {
        if (value.isGraphOutput() || graph.inputs().contains(value)) {
          // A weight that is also a graph input or output keeps its place in the signature: widened here (rare
          // and small in practice). float16 values are exact in float32, so widening changes nothing.
          value.setInitializer(Tensor.ofFloats(tensor.dims(), tensor.floats()));
          value.setType(DataType.FLOAT, value.shape());
        } else if (value.hasUses()) {
          halfWeights.add(value);
        }
      }
    }
    for (Value input : graph.inputs()) {
      if (!input.isInitializer() && input.dataType() == DataType.FLOAT16) {
        input.setType(DataType.FLOAT, input.shape());
        stored.add(input);
      }
    }
    for (Node node : graph.nodes()) {
      List<DataType> outputTypes = new ArrayList<>();
      for (Value output : node.outputs()) {
        outputTypes.add(output == null ? null : types.dataType(output));
      }
      if (node.is(Onnx.CAST) && node.intAttribute("to", 0) == DataType.FLOAT16.number()) {
        node.setAttribute(Attribute.ofInt("to", DataType.FLOAT.number()));
      }
      if (node.is(Onnx.CONSTANT) && node.attribute("value") != null
          && node.attribute("value").asTensor().dataType() == DataType.FLOAT16) {
        Tensor tensor = node.attribute("value").asTensor();
        node.setAttribute(Attribute.ofTensor("value", Tensor.ofFloats(tensor.dims(), tensor.floats())));
      }
      if (node.is(Onnx.CONSTANT_OF_SHAPE) && node.attribute("value") != null
          && node.attribute("value").asTensor().dataType() == DataType.FLOAT16) {
        Tensor tensor = node.attribute("value").asTensor();
        node.setAttribute(Attribute.ofTensor("value", Tensor.ofFloats(tensor.dims(), tensor.floats())));
      }
      for (int index = 0; index < node.outputCount(); index++) {
        Value output = node.output(index);
        if (output != null && outputTypes.get(index) == DataType.FLOAT16) {
          output.setType(DataType.FLOAT, output.shape());
          stored.add(output);
        }
      }
    }
    // float16 weights stay float16 (on disk, half size: a full-size UNet's 1.7 GB would be 3.4 GB widened on the
    // heap) and are read through one Cast(float32). That Cast is exact — the rounding already happened when the
    // weights were stored — so the arithmetic sees the same float32 values a widened copy would hold.
    for (Value value : halfWeights) {
      Node widen = Node.create(Onnx.CAST, value.name() + "/fp16_storage/to_float", List.of(value),
          value.name() + "/fp16_storage/widened");
      widen.setAttribute(Attribute.ofInt("to", DataType.FLOAT.number()));
      Value widened = widen.output();
      widened.setType(DataType.FLOAT, value.shape());
      for (var use : new ArrayList<>(value.uses())) {
        if (use.node() != widen) {
          use.node().setInput(use.inputIndex(), widened);
        }
      }
      graph.insertBefore(graph.nodes().get(0), widen);
    }
    int counter = 0;
    for (Value value : stored) {
      if (!value.hasUses() && !value.isGraphOutput()) {
        continue;
      }
      String base = value.name() + "/fp16_storage";
      Node toHalf = Node.create(Onnx.CAST, base + "/to_half_" + counter, List.of(value), base + "/half_" + counter);
      toHalf.setAttribute(Attribute.ofInt("to", DataType.FLOAT16.number()));
      Node back = Node.create(Onnx.CAST, base + "/to_float_" + counter, List.of(toHalf.output()), base + "/rounded_" + counter);
      back.setAttribute(Attribute.ofInt("to", DataType.FLOAT.number()));
      counter++;
      Node producer = value.producer();
      if (producer == null) {
        graph.insertBefore(graph.nodes().get(0), toHalf);
      } else {
        graph.insertAfter(producer, toHalf);
      }
      graph.insertAfter(toHalf, back);
      Value rounded = back.output();
      rounded.setType(DataType.FLOAT, value.shape());
      if (value.isGraphOutput()) {
        String name = value.name();
        value.setName(name + "/unrounded");
        rounded.setName(name);
      }
      List<Node> keep = List.of(toHalf);
      for (var use : new ArrayList<>(value.uses())) {
        if (!keep.contains(use.node())) {
          use.node().setInput(use.inputIndex(), rounded);
        }
      }
      if (value.isGraphOutput()) {
        for (int i = 0; i < graph.outputs().size(); i++) {
          if (graph.outputs().get(i) == value) {
            graph.setOutput(i, rounded);
          }
        }
      }
    }
    return counter;
  }
}
