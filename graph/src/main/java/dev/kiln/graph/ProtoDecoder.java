package dev.kiln.graph;

import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.Message;
import com.google.protobuf.UnknownFieldSet;
import dev.kiln.common.KilnException;
import dev.kiln.graph.proto.OnnxProto.AttributeProto;
import dev.kiln.graph.proto.OnnxProto.FunctionProto;
import dev.kiln.graph.proto.OnnxProto.GraphProto;
import dev.kiln.graph.proto.OnnxProto.ModelProto;
import dev.kiln.graph.proto.OnnxProto.NodeProto;
import dev.kiln.graph.proto.OnnxProto.OperatorSetIdProto;
import dev.kiln.graph.proto.OnnxProto.SparseTensorProto;
import dev.kiln.graph.proto.OnnxProto.StringStringEntryProto;
import dev.kiln.graph.proto.OnnxProto.TensorProto;
import dev.kiln.graph.proto.OnnxProto.ValueInfoProto;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Turns a parsed ModelProto into the IR, checking what protobuf cannot: names resolve, each value has one
 * producer, nodes are in topological order, tensors hold as many bytes as their shape needs, external data
 * stays inside the model folder. Every failure is a {@link KilnException.BadInput} naming the file.
 */
final class ProtoDecoder {
  private final Path file;
  private final ExternalData externalData;

  /** Resolves external-data references itself (an in-memory copy's shared tensors); null: the data file. */
  private final java.util.function.Function<TensorProto, Tensor> shared;

  ProtoDecoder(Path file) {
    this(file, null);
  }

  ProtoDecoder(Path file, java.util.function.Function<TensorProto, Tensor> shared) {
    this.file = file;
    this.externalData = new ExternalData(file);
    this.shared = shared;
  }

  /** Values visible at a point of a graph: its own so far, then the enclosing graphs' (outer scopes). */
  private static final class Scope {
    final Scope parent;
    final Map<String, Value> local = new HashMap<>();

    Scope(Scope parent) {
      this.parent = parent;
    }

    Value lookup(String name) {
      for (Scope scope = this; scope != null; scope = scope.parent) {
        Value value = scope.local.get(name);
        if (value != null) {
          return value;
        }
      }
      return null;
    }
  }

  Model decode(ModelProto proto) {
    checkWire(proto, "model");
    if (!proto.hasGraph()) {
      throw bad("the model has no graph (is this an ONNX file?)");
    }
    if (!proto.hasIrVersion()) {
      throw bad("the model has no ir_version (is this an ONNX file?)");
    }
    for (OperatorSetIdProto opset : proto.getOpsetImportList()) {
      checkWire(opset, "opset import");
    }
    for (StringStringEntryProto entry : proto.getMetadataPropsList()) {
      checkWire(entry, "model metadata");
    }
    for (int i = 0; i < proto.getTrainingInfoCount(); i++) {
      checkWireDeep(proto.getTrainingInfo(i), "training info " + i);
    }
    for (int i = 0; i < proto.getConfigurationCount(); i++) {
      checkWireDeep(proto.getConfiguration(i), "device configuration " + i);
    }
    Graph graph = decodeGraph(proto.getGraph(), null, "main graph");
    Model model = new Model(proto.getIrVersion(), graph);
    model.setProducer(proto.getProducerName(), proto.getProducerVersion());
    model.setDomain(proto.getDomain());
    model.setModelVersion(proto.getModelVersion());
    model.setDocString(proto.getDocString());
    for (OperatorSetIdProto opset : proto.getOpsetImportList()) {
      model.opsetImports().put(OpType.normalizeDomain(opset.getDomain()), opset.getVersion());
    }
    model.metadata().putAll(metadataOf(proto.getMetadataPropsList()));
    for (FunctionProto function : proto.getFunctionsList()) {
      checkWireDeep(function, "function '" + function.getName() + "'");
      model.functions().add(function);
    }
    model.keepResidue(proto.toBuilder().clearGraph().clearFunctions().build(), file);
    return model;
  }

  static Map<String, String> metadataOf(List<StringStringEntryProto> entries) {
    Map<String, String> metadata = new LinkedHashMap<>();
    for (StringStringEntryProto entry : entries) {
      metadata.put(entry.getKey(), entry.getValue());
    }
    return metadata;
  }

  private Graph decodeGraph(GraphProto proto, Scope outer, String where) {
    checkWire(proto, where);
    String graphWhere = proto.getName().isEmpty() ? where : "graph '" + proto.getName() + "'";
    Graph graph = new Graph(proto.getName());
    graph.setDocString(proto.getDocString());
    for (StringStringEntryProto entry : proto.getMetadataPropsList()) {
      checkWire(entry, graphWhere + " metadata");
    }
    graph.metadata().putAll(metadataOf(proto.getMetadataPropsList()));
    for (var annotation : proto.getQuantizationAnnotationList()) {
      checkWireDeep(annotation, graphWhere + " quantization annotation");
    }
    graph.keepResidue(
        proto.toBuilder().clearNode().clearInitializer().clearSparseInitializer().clearInput().clearOutput().clearValueInfo().build());
    Scope scope = new Scope(outer);

    for (ValueInfoProto info : proto.getInputList()) {
      checkValueInfo(info, graphWhere + " input");
      String name = info.getName();
      if (name.isEmpty()) {
        throw bad(graphWhere + " has an input without a name");
      }
      if (scope.local.containsKey(name)) {
        throw bad(graphWhere + " lists input '" + name + "' twice (duplicate value name)");
      }
      Value value = new Value(name);
      applyType(value, info);
      graph.addInput(value);
      graph.keepInputInfo(value, info);
      scope.local.put(name, value);
    }
    for (TensorProto tensorProto : proto.getInitializerList()) {
      String name = tensorProto.getName();
      if (name.isEmpty()) {
        throw bad(graphWhere + " has an initializer without a name");
      }
      Tensor tensor = decodeTensor(tensorProto, "initializer '" + name + "'");
      Value existing = scope.local.get(name);
      if (existing != null) {
        if (existing.isInitializer() || !existing.isGraphInput()) {
          throw bad(graphWhere + " defines initializer '" + name + "' twice (duplicate value name)");
        }
        graph.setInputDefault(existing, tensor);
      } else {
        Value value = graph.addInitializer(name, tensor);
        scope.local.put(name, value);
      }
    }
    for (SparseTensorProto sparse : proto.getSparseInitializerList()) {
      checkWireDeep(sparse, graphWhere + " sparse initializer");
      String name = sparse.getValues().getName();
      if (name.isEmpty()) {
        throw bad(graphWhere + " has a sparse initializer whose values tensor has no name");
      }
      Value existing = scope.local.get(name);
      if (existing != null && (existing.isInitializer() || !existing.isGraphInput())) {
        throw bad(graphWhere + " defines initializer '" + name + "' twice (duplicate value name)");
      }
      Value value = existing != null ? existing : new Value(name);
      graph.addSparseInitializer(value, sparse);
      scope.local.put(name, value);
    }

    List<NodeProto> nodeProtos = proto.getNodeList();
    for (int index = 0; index < nodeProtos.size(); index++) {
      graph.append(decodeNode(nodeProtos.get(index), index, nodeProtos, scope, graphWhere));
    }

    for (ValueInfoProto info : proto.getOutputList()) {
      checkValueInfo(info, graphWhere + " output");
      Value value = scope.lookup(info.getName());
      if (value == null) {
        throw bad(graphWhere + " output '" + info.getName() + "' is not produced by any node, input or initializer");
      }
      if (TypeInfo.of(value).equals(TypeInfo.NONE)) {
        applyType(value, info);
      }
      graph.addOutput(value);
      graph.keepOutputInfo(value, info);
    }
    for (ValueInfoProto info : proto.getValueInfoList()) {
      checkValueInfo(info, graphWhere + " value_info");
      Value value = scope.lookup(info.getName());
      if (value != null && TypeInfo.of(value).equals(TypeInfo.NONE)) {
        applyType(value, info);
      }
      graph.keepValueInfo(value, info);
    }
    // Freeze the as-read types only now, when every ValueInfoProto of this graph has been seen.
    for (Value value : scope.local.values()) {
      value.keepReadType();
    }
    graph.keepValueInfoReadTypes();
    return graph;
  }

  private static void applyType(Value value, ValueInfoProto info) {
    if (!info.hasType()) {
      return;
    }
    TypeInfo type = TypeInfo.decode(info.getType());
    if (type.nonTensorType() != null) {
      value.setNonTensorType(type.nonTensorType());
    } else {
      value.setType(type.dataType(), type.shape());
    }
  }

  private Node decodeNode(NodeProto proto, int index, List<NodeProto> siblings, Scope scope, String graphWhere) {
    String label = nodeLabel(proto, index);
    checkWire(proto, label);
    for (StringStringEntryProto entry : proto.getMetadataPropsList()) {
      checkWire(entry, label + " metadata");
    }
    for (var configuration : proto.getDeviceConfigurationsList()) {
      checkWireDeep(configuration, label + " device configuration");
    }
    if (proto.getOpType().isEmpty()) {
      throw bad(graphWhere + ": " + label + " has no op_type");
    }
    List<Value> inputs = new ArrayList<>();
    for (int i = 0; i < proto.getInputCount(); i++) {
      String name = proto.getInput(i);
      if (name.isEmpty()) {
        inputs.add(null);
        continue;
      }
      Value value = scope.lookup(name);
      if (value == null) {
        throw bad(graphWhere + ": " + label + " input " + i + " '" + name + "' " + explainMissing(name, index, siblings));
      }
      inputs.add(value);
    }
    List<Attribute> attributes = new ArrayList<>();
    for (AttributeProto attribute : proto.getAttributeList()) {
      attributes.add(decodeAttribute(attribute, scope, label));
    }
    Set<String> outputs = new HashSet<>();
    for (String name : proto.getOutputList()) {
      Value existing = name.isEmpty() ? null : scope.local.get(name);
      if (existing != null || (!name.isEmpty() && !outputs.add(name))) {
        String first = existing == null ? "by " + label
            : existing.producer() != null ? "by " + describe(existing.producer()) : "as a graph input or initializer";
        throw bad(graphWhere + ": value '" + name + "' is produced twice (duplicate value name): " + first + " and by " + label);
      }
    }
    Node node = new Node(new OpType(proto.getDomain(), proto.getOpType()), proto.getName(), inputs, proto.getOutputList());
    node.setDocString(proto.getDocString());
    node.setOverload(proto.getOverload());
    node.metadata().putAll(metadataOf(proto.getMetadataPropsList()));
    node.keepResidue(proto.toBuilder().clearInput().clearOutput().clearAttribute().build());
    attributes.forEach(node::setAttribute);
    for (Value output : node.outputs()) {
      if (output != null) {
        scope.local.put(output.name(), output);
      }
    }
    return node;
  }

  /** Why a name does not resolve: produced later (out of order, or a cycle) or produced nowhere. */
  private String explainMissing(String name, int index, List<NodeProto> siblings) {
    Map<String, Integer> producers = new HashMap<>();
    for (int i = 0; i < siblings.size(); i++) {
      for (String output : siblings.get(i).getOutputList()) {
        if (!output.isEmpty()) {
          producers.putIfAbsent(output, i);
        }
      }
    }
    Integer later = producers.get(name);
    if (later == null) {
      return "is missing: no graph input, initializer or node output has that name";
    }
    List<Integer> cycle = findCycle(index, producers, siblings);
    if (cycle != null) {
      StringBuilder path = new StringBuilder();
      for (int nodeIndex : cycle) {
        path.append(nodeLabel(siblings.get(nodeIndex), nodeIndex)).append(" -> ");
      }
      path.append(nodeLabel(siblings.get(cycle.get(0)), cycle.get(0)));
      return "is produced later by " + nodeLabel(siblings.get(later), later) + ": the nodes form a cycle (" + path + ")";
    }
    return "is produced later by " + nodeLabel(siblings.get(later), later) + ": nodes are not in topological order";
  }

  /** A cycle through node {@code start} following "consumes an output of", as node indices from start; or null. */
  private static List<Integer> findCycle(int start, Map<String, Integer> producers, List<NodeProto> nodes) {
    Map<Integer, Integer> cameFrom = new HashMap<>();
    cameFrom.put(start, -1);
    java.util.ArrayDeque<Integer> frontier = new java.util.ArrayDeque<>(List.of(start));
    while (!frontier.isEmpty()) {
      int current = frontier.removeFirst();
      for (String input : nodes.get(current).getInputList()) {
        Integer producer = producers.get(input);
        if (producer == null) {
          continue;
        }
        if (producer == start) {
          List<Integer> path = new ArrayList<>();
          for (int step = current; step != -1; step = cameFrom.get(step)) {
            path.add(0, step);
          }
          return path;
        }
        if (!cameFrom.containsKey(producer)) {
          cameFrom.put(producer, current);
          frontier.addLast(producer);
        }
      }
    }
    return null;
  }

  private static String describe(Node node) {
    return node.name().isEmpty() ? "node (" + node.opType().key() + ")" : "node '" + node.name() + "' (" + node.opType().key() + ")";
  }

  private static String nodeLabel(NodeProto proto, int index) {
    String type = (proto.getDomain().isEmpty() || proto.getDomain().equals("ai.onnx") ? "" : proto.getDomain() + ":") + proto.getOpType();
    return proto.getName().isEmpty() ? "node #" + index + " (" + type + ")" : "node '" + proto.getName() + "' (" + type + ")";
  }

  private Attribute decodeAttribute(AttributeProto proto, Scope scope, String label) {
    String where = label + " attribute '" + proto.getName() + "'";
    checkWire(proto, where);
    Attribute.Kind kind = proto.hasType() ? Attribute.Kind.fromNumber(proto.getType().getNumber()) : inferKind(proto);
    if (kind == null) {
      kind = Attribute.Kind.UNDEFINED;
    }
    String ref = proto.hasRefAttrName() ? proto.getRefAttrName() : null;
    if (ref != null && !ref.isEmpty()) {
      return new Attribute(proto.getName(), kind, null, ref, proto);
    }
    Object value =
        switch (kind) {
          case FLOAT -> proto.getF();
          case INT -> proto.getI();
          case STRING -> proto.getS();
          case TENSOR -> decodeTensor(proto.getT(), where);
          case GRAPH -> decodeGraph(proto.getG(), scope, where);
          case FLOATS -> {
            float[] floats = new float[proto.getFloatsCount()];
            for (int i = 0; i < floats.length; i++) {
              floats[i] = proto.getFloats(i);
            }
            yield floats;
          }
          case INTS -> {
            long[] ints = new long[proto.getIntsCount()];
            for (int i = 0; i < ints.length; i++) {
              ints[i] = proto.getInts(i);
            }
            yield ints;
          }
          case STRINGS -> List.copyOf(proto.getStringsList());
          case TENSORS -> {
            List<Tensor> tensors = new ArrayList<>();
            for (TensorProto tensor : proto.getTensorsList()) {
              tensors.add(decodeTensor(tensor, where));
            }
            yield List.copyOf(tensors);
          }
          case GRAPHS -> {
            List<Graph> graphs = new ArrayList<>();
            for (GraphProto graph : proto.getGraphsList()) {
              graphs.add(decodeGraph(graph, scope, where));
            }
            yield List.copyOf(graphs);
          }
          case SPARSE_TENSOR -> {
            checkWireDeep(proto.getSparseTensor(), where);
            yield proto.getSparseTensor();
          }
          case SPARSE_TENSORS -> {
            proto.getSparseTensorsList().forEach(sparse -> checkWireDeep(sparse, where));
            yield List.copyOf(proto.getSparseTensorsList());
          }
          case TYPE_PROTO -> {
            checkWireDeep(proto.getTp(), where);
            yield proto.getTp();
          }
          case TYPE_PROTOS -> {
            proto.getTypeProtosList().forEach(type -> checkWireDeep(type, where));
            yield List.copyOf(proto.getTypeProtosList());
          }
          case UNDEFINED -> null;
        };
    return new Attribute(proto.getName(), kind, value, ref, proto);
  }

  /** IR version 1 attributes carry no type field: the populated value field tells the kind. */
  private static Attribute.Kind inferKind(AttributeProto proto) {
    if (proto.hasF()) return Attribute.Kind.FLOAT;
    if (proto.hasI()) return Attribute.Kind.INT;
    if (proto.hasS()) return Attribute.Kind.STRING;
    if (proto.hasT()) return Attribute.Kind.TENSOR;
    if (proto.hasG()) return Attribute.Kind.GRAPH;
    if (proto.hasSparseTensor()) return Attribute.Kind.SPARSE_TENSOR;
    if (proto.hasTp()) return Attribute.Kind.TYPE_PROTO;
    if (proto.getFloatsCount() > 0) return Attribute.Kind.FLOATS;
    if (proto.getIntsCount() > 0) return Attribute.Kind.INTS;
    if (proto.getStringsCount() > 0) return Attribute.Kind.STRINGS;
    if (proto.getTensorsCount() > 0) return Attribute.Kind.TENSORS;
    if (proto.getGraphsCount() > 0) return Attribute.Kind.GRAPHS;
    if (proto.getSparseTensorsCount() > 0) return Attribute.Kind.SPARSE_TENSORS;
    if (proto.getTypeProtosCount() > 0) return Attribute.Kind.TYPE_PROTOS;
    return Attribute.Kind.UNDEFINED;
  }

  Tensor decodeTensor(TensorProto proto, String where) {
    checkWire(proto, where);
    if (proto.hasSegment()) {
      checkWire(proto.getSegment(), where + " segment");
    }
    for (StringStringEntryProto entry : proto.getExternalDataList()) {
      checkWire(entry, where + " external_data");
    }
    for (StringStringEntryProto entry : proto.getMetadataPropsList()) {
      checkWire(entry, where + " metadata");
    }
    DataType dataType = DataType.fromNumberOrNull(proto.getDataType());
    if (dataType == null || dataType == DataType.UNDEFINED) {
      throw bad(where + " has data type " + proto.getDataType() + ", which is not an ONNX tensor type Kiln knows");
    }
    long[] dims = new long[proto.getDimsCount()];
    long count = 1;
    for (int i = 0; i < dims.length; i++) {
      dims[i] = proto.getDims(i);
      if (dims[i] < 0) {
        throw bad(where + " has a negative dimension " + dims[i]);
      }
      try {
        count = Math.multiplyExact(count, dims[i]);
      } catch (ArithmeticException e) {
        throw bad(where + " has a shape whose element count overflows");
      }
    }
    if (proto.hasDataLocation() && proto.getDataLocation() == TensorProto.DataLocation.EXTERNAL) {
      return shared != null ? shared.apply(proto) : externalData.resolve(proto, dataType, dims);
    }
    if (!proto.hasSegment()) {
      checkInlineSize(proto, dataType, count, where);
    }
    return new InlineTensor(proto, dataType);
  }

  private void checkInlineSize(TensorProto proto, DataType dataType, long count, String where) {
    if (dataType == DataType.STRING) {
      if (proto.getStringDataCount() != count) {
        throw bad(where + " has " + proto.getStringDataCount() + " strings, but its shape " + Shape.of(dimsOf(proto)) + " needs " + count);
      }
      return;
    }
    long expected = dataType.byteSize(count);
    if (proto.hasRawData()) {
      if (proto.getRawData().size() != expected) {
        throw bad(where + " has " + proto.getRawData().size() + " bytes of raw_data, but shape " + Shape.of(dimsOf(proto)) + " of "
            + dataType + " needs " + expected + " bytes");
      }
      return;
    }
    long entries =
        switch (dataType) {
          case FLOAT -> proto.getFloatDataCount();
          case COMPLEX64 -> proto.getFloatDataCount() / 2;
          case DOUBLE -> proto.getDoubleDataCount();
          case COMPLEX128 -> proto.getDoubleDataCount() / 2;
          case INT64 -> proto.getInt64DataCount();
          case UINT32, UINT64 -> proto.getUint64DataCount();
          case INT4, UINT4, FLOAT4E2M1 -> proto.getInt32DataCount() * 2L - (count % 2);
          default -> proto.getInt32DataCount();
        };
    if (entries != count) {
      throw bad(where + " holds " + entries + " values, but its shape " + Shape.of(dimsOf(proto)) + " needs " + count);
    }
  }

  private static long[] dimsOf(TensorProto proto) {
    long[] dims = new long[proto.getDimsCount()];
    for (int i = 0; i < dims.length; i++) {
      dims[i] = proto.getDims(i);
    }
    return dims;
  }

  private void checkValueInfo(ValueInfoProto info, String where) {
    checkWire(info, where);
    if (info.hasType()) {
      checkWireDeep(info.getType(), where + " '" + info.getName() + "' type");
    }
    for (StringStringEntryProto entry : info.getMetadataPropsList()) {
      checkWire(entry, where + " metadata");
    }
  }

  /**
   * protobuf-java keeps a known field that arrives with the wrong wire type as an unknown field instead
   * of failing; for a schema we own that is corruption, so it is reported here. (A proto2 enum field
   * holding an unknown number also lands there, with the right wire type; that is preserved, not an error.)
   */
  private void checkWire(Message message, String where) {
    UnknownFieldSet unknown = message.getUnknownFields();
    if (unknown.asMap().isEmpty()) {
      return;
    }
    for (Map.Entry<Integer, UnknownFieldSet.Field> entry : unknown.asMap().entrySet()) {
      FieldDescriptor field = message.getDescriptorForType().findFieldByNumber(entry.getKey());
      if (field == null) {
        continue;
      }
      UnknownFieldSet.Field value = entry.getValue();
      boolean onlyVarints = value.getFixed32List().isEmpty() && value.getFixed64List().isEmpty()
          && value.getLengthDelimitedList().isEmpty() && value.getGroupList().isEmpty();
      if (field.getType() == FieldDescriptor.Type.ENUM && onlyVarints) {
        continue;
      }
      throw bad(where + ": field '" + field.getName() + "' (number " + field.getNumber() + ") of "
          + message.getDescriptorForType().getName() + " has the wrong wire type for a " + field.getType().name().toLowerCase(java.util.Locale.ROOT));
    }
  }

  /** {@link #checkWire} over a message and everything nested in it (for parts kept in protobuf form). */
  private void checkWireDeep(Message message, String where) {
    checkWire(message, where);
    for (Map.Entry<FieldDescriptor, Object> field : message.getAllFields().entrySet()) {
      if (field.getKey().getJavaType() != FieldDescriptor.JavaType.MESSAGE) {
        continue;
      }
      if (field.getKey().isRepeated()) {
        for (Object element : (List<?>) field.getValue()) {
          checkWireDeep((Message) element, where);
        }
      } else {
        checkWireDeep((Message) field.getValue(), where);
      }
    }
  }

  private KilnException.BadInput bad(String problem) {
    return new KilnException.BadInput(file + ": " + problem);
  }
}
