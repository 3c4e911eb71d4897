package dev.kiln.optimizer.rules;

import dev.kiln.graph.Attribute;
import dev.kiln.graph.DataType;
import dev.kiln.graph.Graph;
import dev.kiln.graph.Model;
import dev.kiln.graph.Node;
import dev.kiln.graph.OpType;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

/** Builds small models the way torch names them ("/block/Op_N"), for rule tests. */
final class SmallGraph {
  final Graph graph = new Graph("small");
  final Model model;
  private final String scope;
  private final Random random = new Random(3);
  private int counter;

  SmallGraph(long opset, String scope) {
    model = new Model(8, graph);
    model.opsetImports().put("", opset);
    model.setProducer("pytorch", "1.13.1");
    this.scope = scope;
  }

  Value input(String name, Shape shape) {
    return graph.addInput(name, DataType.FLOAT, shape);
  }

  Value weights(String name, long... dims) {
    int count = 1;
    for (long dim : dims) {
      count *= (int) dim;
    }
    float[] values = new float[count];
    for (int i = 0; i < count; i++) {
      values[i] = (float) (random.nextGaussian() * 0.5);
    }
    return graph.addInitializer(scope + name, Tensor.ofFloats(dims, values));
  }

  Value filled(String name, float value, long... dims) {
    int count = 1;
    for (long dim : dims) {
      count *= (int) dim;
    }
    float[] values = new float[count];
    Arrays.fill(values, value);
    return graph.addInitializer(scope + name, Tensor.ofFloats(dims, values));
  }

  Value scalar(float value) {
    return constantNode(Tensor.ofFloats(new long[0], value));
  }

  Value longs(long... values) {
    return constantNode(Tensor.ofLongs(new long[] {values.length}, values));
  }

  Value constantNode(Tensor tensor) {
    Node node = Node.create(dev.kiln.graph.Onnx.CONSTANT, scope + "Constant_" + counter++, List.of(), scope + "Constant_" + counter + "_output_0");
    node.setAttribute(Attribute.ofTensor("value", tensor));
    graph.append(node);
    return node.output();
  }

  Value op(OpType type, List<Value> inputs, Attribute... attributes) {
    String name = scope + type.name() + "_" + counter++;
    Node node = Node.create(type, name, inputs, name + "_output_0");
    for (Attribute attribute : attributes) {
      node.setAttribute(attribute);
    }
    graph.append(node);
    return node.output();
  }

  Value op(OpType type, Value... inputs) {
    return op(type, Arrays.asList(inputs));
  }

  void output(Value value, String name, Shape shape) {
    value.setName(name);
    value.setType(DataType.FLOAT, shape);
    graph.addOutput(value);
  }
}
