package dev.kiln.optimizer.precision;

import dev.kiln.graph.DataType;
import dev.kiln.graph.Model;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.OpType;
import dev.kiln.graph.SharedTensors;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import dev.kiln.graph.infer.ShapeInference;
import dev.kiln.graph.proto.OnnxProto.AttributeProto;
import dev.kiln.graph.proto.OnnxProto.GraphProto;
import dev.kiln.graph.proto.OnnxProto.ModelProto;
import dev.kiln.graph.proto.OnnxProto.NodeProto;
import dev.kiln.graph.proto.OnnxProto.TensorProto;
import dev.kiln.graph.proto.OnnxProto.TensorShapeProto;
import dev.kiln.graph.proto.OnnxProto.TypeProto;
import dev.kiln.graph.proto.OnnxProto.ValueInfoProto;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The reference and a candidate in one graph, compared value by value inside it: both graphs' float values that
 * carry the same name (their exposed outputs) are reduced to four scalars — {@code max|e − a|}, {@code max|e|}, and
 * {@code Σ e·0}, {@code Σ a·0} (0 when every element is finite, NaN otherwise: NaN and ±Inf times 0 are NaN, and a sum
 * keeps NaN) — so a localisation is one run that returns a few numbers per value, where fetching both graphs'
 * intermediates cost gigabytes (a full-size UNet's attention scores alone are hundreds of MB a set).
 *
 * <p>The reference's names get a prefix (graph inputs are shared). The node list is the reference's nodes, the
 * candidate's, then the comparisons in reverse value order: ORT runs the nodes depth-first back from the last leaf,
 * so it computes both graphs up to the first compared value, compares it, moves on to the next, and frees each value
 * once it is compared (see {@link RangeStatistics}).
 */
final class Divergence {
  private static final String PREFIX = "kiln_reference/";

  /** What one value's comparison measured. */
  record Measure(double maxDifference, double maxExpected, boolean expectedFinite, boolean actualFinite) {
    /** {@link MixedPrecision#relativeError} from the reductions: max|e − a| / max(1e-6, max|e|), NaN and Inf as it treats them. */
    double error() {
      if (!expectedFinite) {
        // A non-finite reference makes the scale (Math.max with NaN) or the ratio (∞/∞) NaN.
        return Double.NaN;
      }
      if (!actualFinite) {
        return Double.POSITIVE_INFINITY;
      }
      return maxDifference / Math.max(1e-6, maxExpected);
    }
  }

  private final byte[] proto;
  private final Map<String, Tensor> external;
  /** Per compared value, its four outputs. */
  private final Map<String, String[]> outputs;

  private Divergence(byte[] proto, Map<String, Tensor> external, Map<String, String[]> outputs) {
    this.proto = proto;
    this.external = external;
    this.outputs = outputs;
  }

  /** Both models' float graph outputs of the same name are compared; their other outputs are dropped. */
  static Divergence of(Model reference, Model candidate) {
    Set<String> referenceFloats = floatOutputs(reference);
    Set<String> candidateFloats = floatOutputs(candidate);
    SharedTensors.GraphOnly referenceGraph = SharedTensors.graphOnly(reference, SharedTensors.DEFAULT_THRESHOLD);
    SharedTensors.GraphOnly candidateGraph = SharedTensors.graphOnly(candidate, SharedTensors.DEFAULT_THRESHOLD);
    ModelProto referenceModel;
    ModelProto candidateModel;
    try {
      referenceModel = ModelProto.parseFrom(referenceGraph.proto());
      candidateModel = ModelProto.parseFrom(candidateGraph.proto());
    } catch (com.google.protobuf.InvalidProtocolBufferException e) {
      throw new IllegalStateException("an in-memory graph did not parse back: " + e.getMessage(), e);
    }
    GraphProto referenceProto = referenceModel.getGraph();
    GraphProto candidateProto = candidateModel.getGraph();
    Set<String> shared = new HashSet<>();
    referenceProto.getInputList().forEach(input -> shared.add(input.getName()));
    GraphProto renamed = rename(referenceProto, shared);

    Set<String> referenceValues = new HashSet<>();
    for (NodeProto node : renamed.getNodeList()) {
      referenceValues.addAll(node.getOutputList());
    }
    GraphProto.Builder merged = candidateProto.toBuilder().clearNode().clearOutput();
    renamed.getInitializerList().forEach(merged::addInitializer);
    renamed.getValueInfoList().forEach(merged::addValueInfo);
    String zero = PREFIX + "compare/zero";
    merged.addInitializer(TensorProto.newBuilder().setName(zero).setDataType(DataType.FLOAT.number())
        .addFloatData(0f));
    Map<String, String[]> outputs = new LinkedHashMap<>();
    renamed.getNodeList().forEach(merged::addNode);
    candidateProto.getNodeList().forEach(merged::addNode);
    List<List<NodeProto>> comparisons = new ArrayList<>();
    int compared = 0;
    for (NodeProto node : candidateProto.getNodeList()) {
      for (String value : node.getOutputList()) {
        if (value.isEmpty() || !candidateFloats.contains(value) || !referenceFloats.contains(value)
            || !referenceValues.contains(PREFIX + value)) {
          continue;
        }
        List<NodeProto> comparison = new ArrayList<>();
        comparisons.add(comparison);
        String base = PREFIX + "compare/" + compared++;
        String expected = PREFIX + value;
        String[] four = {base + "/max_difference", base + "/max_expected", base + "/expected_finite",
            base + "/actual_finite"};
        comparison.add(node(Onnx.SUB, base + "/difference", List.of(expected, value), base + "/difference"));
        comparison.add(node(Onnx.ABS, base + "/abs_difference", List.of(base + "/difference"), base + "/abs_difference"));
        comparison.add(reduce(Onnx.REDUCE_MAX, base + "/max_difference", base + "/abs_difference", four[0]));
        comparison.add(node(Onnx.ABS, base + "/abs_expected", List.of(expected), base + "/abs_expected"));
        comparison.add(reduce(Onnx.REDUCE_MAX, base + "/max_expected", base + "/abs_expected", four[1]));
        comparison.add(node(Onnx.MUL, base + "/expected_zeroed", List.of(expected, zero), base + "/expected_zeroed"));
        comparison.add(reduce(Onnx.REDUCE_SUM, base + "/expected_finite", base + "/expected_zeroed", four[2]));
        comparison.add(node(Onnx.MUL, base + "/actual_zeroed", List.of(value, zero), base + "/actual_zeroed"));
        comparison.add(reduce(Onnx.REDUCE_SUM, base + "/actual_finite", base + "/actual_zeroed", four[3]));
        // Scalar outputs, one per number: ORT sets these up faster than numbers gathered into one (see
        // RangeStatistics).
        for (String output : four) {
          merged.addOutput(scalar(output));
        }
        outputs.put(value, four);
      }
    }
    for (int index = comparisons.size() - 1; index >= 0; index--) {
      comparisons.get(index).forEach(merged::addNode);
    }

    Map<String, Tensor> external = new LinkedHashMap<>(candidateGraph.external());
    referenceGraph.external().forEach((name, tensor) -> external.put(PREFIX + name, tensor));
    byte[] bytes = candidateModel.toBuilder().setGraph(merged).build().toByteArray();
    return new Divergence(bytes, external, outputs);
  }

  /** Runs the comparison on one set: what each compared value measured, by name. */
  Map<String, Measure> measure(SessionWeights weights, CalibrationSets.Set set, int[] sessions) {
    Map<String, double[]> fetched;
    try (OrtCpu session = new OrtCpu(proto, external, weights)) {
      sessions[0]++;
      Set<String> names = new java.util.LinkedHashSet<>();
      outputs.values().forEach(four -> names.addAll(List.of(four)));
      fetched = session.runNumbers(set.feeds(), names);
    }
    Map<String, Measure> measures = new LinkedHashMap<>();
    outputs.forEach((value, four) -> measures.put(value, new Measure(fetched.get(four[0])[0], fetched.get(four[1])[0],
        !Double.isNaN(fetched.get(four[2])[0]), !Double.isNaN(fetched.get(four[3])[0]))));
    return measures;
  }

  private static Set<String> floatOutputs(Model model) {
    ShapeInference types = ShapeInference.of(model);
    Set<String> names = new HashSet<>();
    for (Value output : model.graph().outputs()) {
      if (types.dataType(output) == DataType.FLOAT) {
        names.add(output.name());
      }
    }
    return names;
  }

  /** Every name of the graph (and of its subgraphs) but the shared graph inputs, with the prefix. */
  private static GraphProto rename(GraphProto graph, Set<String> shared) {
    GraphProto.Builder builder = graph.toBuilder().clearNode().clearInitializer().clearValueInfo().clearOutput()
        .clearInput().clearSparseInitializer();
    for (ValueInfoProto input : graph.getInputList()) {
      builder.addInput(input.toBuilder().setName(renamed(input.getName(), shared)));
    }
    for (ValueInfoProto output : graph.getOutputList()) {
      builder.addOutput(output.toBuilder().setName(renamed(output.getName(), shared)));
    }
    for (TensorProto initializer : graph.getInitializerList()) {
      builder.addInitializer(initializer.toBuilder().setName(renamed(initializer.getName(), shared)));
    }
    for (var sparse : graph.getSparseInitializerList()) {
      builder.addSparseInitializer(sparse.toBuilder().setValues(sparse.getValues().toBuilder()
          .setName(renamed(sparse.getValues().getName(), shared))));
    }
    for (ValueInfoProto info : graph.getValueInfoList()) {
      builder.addValueInfo(info.toBuilder().setName(renamed(info.getName(), shared)));
    }
    for (NodeProto node : graph.getNodeList()) {
      NodeProto.Builder copy = node.toBuilder().clearInput().clearOutput().clearAttribute()
          .setName(PREFIX + node.getName());
      node.getInputList().forEach(input -> copy.addInput(renamed(input, shared)));
      node.getOutputList().forEach(output -> copy.addOutput(renamed(output, shared)));
      for (AttributeProto attribute : node.getAttributeList()) {
        AttributeProto.Builder renamedAttribute = attribute.toBuilder();
        if (attribute.hasG()) {
          renamedAttribute.setG(rename(attribute.getG(), shared));
        }
        if (attribute.getGraphsCount() > 0) {
          renamedAttribute.clearGraphs();
          attribute.getGraphsList().forEach(body -> renamedAttribute.addGraphs(rename(body, shared)));
        }
        copy.addAttribute(renamedAttribute);
      }
      builder.addNode(copy);
    }
    return builder.build();
  }

  private static String renamed(String name, Set<String> shared) {
    return name.isEmpty() || shared.contains(name) ? name : PREFIX + name;
  }

  private static NodeProto node(OpType op, String name, List<String> inputs, String output) {
    return NodeProto.newBuilder().setOpType(op.name()).setName(name).addAllInput(inputs).addOutput(output).build();
  }

  private static NodeProto reduce(OpType op, String name, String input, String output) {
    return node(op, name, List.of(input), output).toBuilder().addAttribute(AttributeProto.newBuilder()
        .setName("keepdims").setType(AttributeProto.AttributeType.INT).setI(0)).build();
  }

  private static ValueInfoProto scalar(String name) {
    return ValueInfoProto.newBuilder().setName(name).setType(TypeProto.newBuilder().setTensorType(
        TypeProto.Tensor.newBuilder().setElemType(DataType.FLOAT.number()).setShape(TensorShapeProto.getDefaultInstance())))
        .build();
  }
}
