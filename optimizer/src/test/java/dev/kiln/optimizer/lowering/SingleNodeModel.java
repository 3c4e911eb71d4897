package dev.kiln.optimizer.lowering;

import dev.kiln.validator.lowering.Lowering;
import dev.kiln.graph.Attribute;
import dev.kiln.graph.DataType;
import dev.kiln.graph.Graph;
import dev.kiln.graph.Model;
import dev.kiln.graph.ModelWriter;
import dev.kiln.graph.Node;
import dev.kiln.graph.OpType;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import dev.kiln.graph.Verifier;
import dev.kiln.optimizer.OrtParity;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * A one-node model around a contrib op, built in Kiln's IR: feeds are graph inputs, weights (gamma, beta, bias,
 * filters) initializers, as fusions emit them. {@link #runLowered} lowers it and runs it in ORT on CPU.
 */
final class SingleNodeModel {
  private final Graph graph = new Graph("single_node");
  private final Map<String, OrtParity.Input> feeds = new LinkedHashMap<>();
  private final List<Value> inputs = new ArrayList<>();
  private final long opset;
  private Node node;

  SingleNodeModel(long opset) {
    this.opset = opset;
  }

  SingleNodeModel() {
    this(17);
  }

  /** A float graph input fed with {@code tensor}. */
  SingleNodeModel feed(String name, ReferenceOps.Tensor tensor) {
    inputs.add(graph.addInput(name, DataType.FLOAT, Shape.of(tensor.shape())));
    feeds.put(name, OrtParity.Input.floats(tensor.shape(), tensor.data()));
    return this;
  }

  /** A float initializer. */
  SingleNodeModel weight(String name, long[] shape, float[] values) {
    inputs.add(graph.addInitializer(name, Tensor.ofFloats(shape, values)));
    return this;
  }

  /** An omitted optional input. */
  SingleNodeModel absent() {
    inputs.add(null);
    return this;
  }

  SingleNodeModel node(OpType op, int outputCount, Attribute... attributes) {
    List<String> outputNames = new ArrayList<>();
    for (int i = 0; i < outputCount; i++) {
      outputNames.add("output_" + i);
    }
    node = new Node(op, "/block/" + op.name(), inputs, outputNames);
    for (Attribute attribute : attributes) {
      node.setAttribute(attribute);
    }
    graph.append(node);
    for (Value output : node.outputs()) {
      output.setType(DataType.FLOAT, null);
      graph.addOutput(output);
    }
    return this;
  }

  Model model() {
    Model model = new Model(8, graph);
    model.opsetImports().put("", opset);
    model.opsetImports().put(OpType.MICROSOFT_DOMAIN, 1L);
    return model;
  }

  /** Runs the model as built (no lowering), for the checks that ORT's CPU EP refuses the contrib op. */
  Map<String, float[]> runAsIs() {
    return OrtParity.run(write(model()), feeds);
  }

  /** Lowers with {@code lowering}, verifies the graph, runs it in ORT CPU; outputs by name. */
  Map<String, float[]> runLowered(Lowering lowering) {
    Model model = model();
    Map<OpType, Integer> counts = lowering.lower(model);
    if (counts.values().stream().mapToInt(Integer::intValue).sum() != 1) {
      throw new AssertionError("expected exactly one lowered node, got " + counts);
    }
    Verifier.verify(model);
    return OrtParity.run(write(model), feeds);
  }

  private static Path write(Model model) {
    try {
      Path directory = Files.createTempDirectory("kiln-lowering");
      Path file = directory.resolve("model.onnx");
      ModelWriter.write(model, file);
      file.toFile().deleteOnExit();
      directory.toFile().deleteOnExit();
      return file;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Standard-normal values scaled and shifted, so that a lowering that forgets to centre shows it. */
  static ReferenceOps.Tensor random(Random random, double scale, double shift, long... shape) {
    float[] values = new float[Math.toIntExact(ReferenceOps.elementCount(shape))];
    for (int i = 0; i < values.length; i++) {
      values[i] = (float) (random.nextGaussian() * scale + shift);
    }
    return new ReferenceOps.Tensor(values, shape);
  }

  static float[] randomVector(Random random, int length, double scale, double shift) {
    return random(random, scale, shift, length).data();
  }

  static double maxAbsoluteError(float[] expected, float[] actual) {
    if (expected.length != actual.length) {
      throw new AssertionError("lengths " + expected.length + " vs " + actual.length);
    }
    double worst = 0;
    for (int i = 0; i < expected.length; i++) {
      double difference = Math.abs((double) expected[i] - actual[i]);
      worst = Double.isNaN(difference) ? Double.POSITIVE_INFINITY : Math.max(worst, difference);
    }
    return worst;
  }

  static String describe(long... shape) {
    return Arrays.toString(shape);
  }
}
