package dev.kiln.graph;

import com.google.protobuf.ByteString;
import com.google.protobuf.UnsafeByteOperations;
import dev.kiln.common.KilnException;
import dev.kiln.graph.proto.OnnxProto.AttributeProto;
import dev.kiln.graph.proto.OnnxProto.GraphProto;
import dev.kiln.graph.proto.OnnxProto.ModelProto;
import dev.kiln.graph.proto.OnnxProto.NodeProto;
import dev.kiln.graph.proto.OnnxProto.OperatorSetIdProto;
import dev.kiln.graph.proto.OnnxProto.SparseTensorProto;
import dev.kiln.graph.proto.OnnxProto.StringStringEntryProto;
import dev.kiln.graph.proto.OnnxProto.TensorProto;
import dev.kiln.graph.proto.OnnxProto.TypeProto;
import dev.kiln.graph.proto.OnnxProto.ValueInfoProto;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;

/**
 * IR → ModelProto. Each element starts from the protobuf it was read from (when there is one) and only
 * the modelled fields are rewritten, so whatever the IR does not model — and the presence or spelling of
 * fields it does model but did not change — comes out exactly as it went in.
 */
final class ProtoEncoder {
  /** A tensor whose bytes go to the data file at {@code offset}; {@code repoint} installs the written copy. */
  record Placement(Tensor tensor, long offset, Consumer<Tensor> repoint) {}

  private final WriteOptions options;
  private final String dataFileName;
  private final List<Placement> placements = new ArrayList<>();
  private long dataEnd;
  private long inlineBytes;
  /** Tensors of attributes stay inline whatever the options (an in-memory session replaces initializers only). */
  private boolean attributesInline;

  ProtoEncoder(WriteOptions options, String dataFileName) {
    this.options = options;
    this.dataFileName = dataFileName;
  }

  ProtoEncoder attributesInline() {
    attributesInline = true;
    return this;
  }

  List<Placement> placements() {
    return placements;
  }

  long dataFileSize() {
    return dataEnd;
  }

  long inlineBytes() {
    return inlineBytes;
  }

  ModelProto encodeModel(Model model) {
    ModelProto original = model.original != null ? model.original : ModelProto.getDefaultInstance();
    ModelProto.Builder builder = original.toBuilder();
    if (!(original.hasIrVersion() && original.getIrVersion() == model.irVersion())) {
      builder.setIrVersion(model.irVersion());
    }
    setString(original.hasProducerName(), original.getProducerName(), model.producerName(), builder::setProducerName, builder::clearProducerName);
    setString(original.hasProducerVersion(), original.getProducerVersion(), model.producerVersion(), builder::setProducerVersion,
        builder::clearProducerVersion);
    setString(original.hasDomain(), original.getDomain(), model.domain(), builder::setDomain, builder::clearDomain);
    if (!(original.hasModelVersion() && original.getModelVersion() == model.modelVersion())) {
      if (model.modelVersion() == 0) {
        builder.clearModelVersion();
      } else {
        builder.setModelVersion(model.modelVersion());
      }
    }
    setString(original.hasDocString(), original.getDocString(), model.docString(), builder::setDocString, builder::clearDocString);
    if (!sameEntries(opsetsOf(original.getOpsetImportList()), model.opsetImports())) {
      builder.clearOpsetImport();
      model.opsetImports().forEach((domain, version) -> builder.addOpsetImport(OperatorSetIdProto.newBuilder().setDomain(domain).setVersion(version)));
    }
    if (!sameEntries(ProtoDecoder.metadataOf(original.getMetadataPropsList()), model.metadata())) {
      builder.clearMetadataProps().addAllMetadataProps(entries(model.metadata()));
    }
    if (model.graph() != null) {
      builder.setGraph(encodeGraph(model.graph()));
    }
    builder.clearFunctions().addAllFunctions(model.functions());
    return builder.build();
  }

  private static Map<String, Long> opsetsOf(List<OperatorSetIdProto> opsets) {
    Map<String, Long> map = new java.util.LinkedHashMap<>();
    for (OperatorSetIdProto opset : opsets) {
      map.put(OpType.normalizeDomain(opset.getDomain()), opset.getVersion());
    }
    return map;
  }

  /** Same keys, values and order (Map.equals ignores order; the file does not). */
  private static boolean sameEntries(Map<?, ?> a, Map<?, ?> b) {
    return new ArrayList<>(a.entrySet()).equals(new ArrayList<>(b.entrySet()));
  }

  private static List<StringStringEntryProto> entries(Map<String, String> metadata) {
    List<StringStringEntryProto> list = new ArrayList<>();
    metadata.forEach((key, value) -> list.add(StringStringEntryProto.newBuilder().setKey(key).setValue(value).build()));
    return list;
  }

  GraphProto encodeGraph(Graph graph) {
    GraphProto original = graph.original != null ? graph.original : GraphProto.getDefaultInstance();
    GraphProto.Builder builder = original.toBuilder();
    setString(original.hasName(), original.getName(), graph.name(), builder::setName, builder::clearName);
    setString(original.hasDocString(), original.getDocString(), graph.docString(), builder::setDocString, builder::clearDocString);
    if (!sameEntries(ProtoDecoder.metadataOf(original.getMetadataPropsList()), graph.metadata())) {
      builder.clearMetadataProps().addAllMetadataProps(entries(graph.metadata()));
    }
    for (Node node : graph.nodes) {
      builder.addNode(encodeNode(node));
    }
    for (Value value : graph.initializers) {
      builder.addInitializer(encodeTensor(value.initializer, value.name(), tensor -> value.initializer = tensor));
    }
    for (Value value : graph.sparseInitializers) {
      SparseTensorProto sparse = value.sparseInitializer;
      if (!sparse.getValues().getName().equals(value.name())) {
        sparse = sparse.toBuilder().setValues(sparse.getValues().toBuilder().setName(value.name())).build();
      }
      builder.addSparseInitializer(sparse);
    }
    for (Value value : graph.inputs) {
      builder.addInput(encodeValueInfo(value, graph.inputInfo.get(value)));
    }
    for (Value value : graph.outputs) {
      builder.addOutput(encodeValueInfo(value, graph.outputInfo.get(value)));
    }
    Set<Value> described = Collections.newSetFromMap(new IdentityHashMap<>());
    for (Graph.InfoSlot slot : graph.valueInfo) {
      if (slot.value() == null) {
        builder.addValueInfo(slot.proto());
      } else if (isAlive(slot.value()) && described.add(slot.value())) {
        builder.addValueInfo(encodeValueInfo(slot.value(), slot.proto()));
      }
    }
    // Values Kiln typed itself (e.g. by shape inference) are recorded too, in node order.
    for (Node node : graph.nodes) {
      for (Value output : node.outputs) {
        boolean typedSinceReading = output != null && !TypeInfo.of(output).equals(output.readType == null ? TypeInfo.NONE : output.readType);
        if (typedSinceReading && !described.contains(output) && !graph.outputs.contains(output) && !TypeInfo.of(output).equals(TypeInfo.NONE)) {
          described.add(output);
          builder.addValueInfo(encodeValueInfo(output, null));
        }
      }
    }
    return builder.build();
  }

  private static boolean isAlive(Value value) {
    if (value.producer != null) {
      return value.producer.graph() != null;
    }
    return value.owner != null && (value.owner.inputs.contains(value) || value.isInitializer());
  }

  private static ValueInfoProto encodeValueInfo(Value value, ValueInfoProto original) {
    if (original != null) {
      ValueInfoProto.Builder builder = original.toBuilder();
      if (!original.getName().equals(value.name())) {
        builder.setName(value.name());
      }
      TypeInfo now = TypeInfo.of(value);
      if (!now.equals(value.readType)) {
        TypeProto type = now.encode();
        if (type == null) {
          builder.clearType();
        } else {
          builder.setType(type);
        }
      }
      return builder.build();
    }
    ValueInfoProto.Builder builder = ValueInfoProto.newBuilder().setName(value.name());
    TypeProto type = new TypeInfo(value.dataType(), value.shape(), value.nonTensorType()).encode();
    if (type != null) {
      builder.setType(type);
    }
    return builder.build();
  }

  private NodeProto encodeNode(Node node) {
    NodeProto original = node.original != null ? node.original : NodeProto.getDefaultInstance();
    NodeProto.Builder builder = original.toBuilder();
    for (Value input : node.inputs) {
      builder.addInput(input == null ? "" : input.name());
    }
    for (Value output : node.outputs) {
      builder.addOutput(output == null ? "" : output.name());
    }
    setString(original.hasName(), original.getName(), node.name(), builder::setName, builder::clearName);
    if (!original.getOpType().equals(node.opType().name())) {
      builder.setOpType(node.opType().name());
    }
    if (!OpType.normalizeDomain(original.getDomain()).equals(node.opType().domain())) {
      if (node.opType().domain().isEmpty()) {
        builder.clearDomain();
      } else {
        builder.setDomain(node.opType().domain());
      }
    }
    setString(original.hasOverload(), original.getOverload(), node.overload(), builder::setOverload, builder::clearOverload);
    setString(original.hasDocString(), original.getDocString(), node.docString(), builder::setDocString, builder::clearDocString);
    if (!sameEntries(ProtoDecoder.metadataOf(original.getMetadataPropsList()), node.metadata())) {
      builder.clearMetadataProps().addAllMetadataProps(entries(node.metadata()));
    }
    List<Attribute> attributes = node.attributes();
    for (int i = 0; i < attributes.size(); i++) {
      builder.addAttribute(encodeAttribute(node, attributes.get(i)));
    }
    return builder.build();
  }

  private AttributeProto encodeAttribute(Node node, Attribute attribute) {
    AttributeProto.Builder builder;
    if (attribute.original != null) {
      builder = attribute.original.toBuilder();
    } else {
      builder = AttributeProto.newBuilder().setName(attribute.name()).setType(AttributeProto.AttributeType.forNumber(attribute.kind().number()));
      if (attribute.refAttrName() != null) {
        builder.setRefAttrName(attribute.refAttrName());
      }
    }
    if (attribute.refAttrName() != null && !attribute.refAttrName().isEmpty()) {
      return builder.build();
    }
    switch (attribute.kind()) {
      case FLOAT -> builder.setF(attribute.asFloat());
      case INT -> builder.setI(attribute.asLong());
      case STRING -> builder.setS(attribute.rawBytes());
      case FLOATS -> {
        builder.clearFloats();
        for (float value : attribute.asFloats()) {
          builder.addFloats(value);
        }
      }
      case INTS -> {
        builder.clearInts();
        for (long value : attribute.asLongs()) {
          builder.addInts(value);
        }
      }
      case STRINGS -> builder.clearStrings().addAllStrings(attribute.asStrings().stream().map(ByteString::copyFromUtf8).toList());
      case TENSOR -> {
        Tensor tensor = attribute.asTensor();
        builder.setT(encodeTensor(tensor, null, written -> node.setAttribute(attribute.withValue(written))));
      }
      case TENSORS -> {
        builder.clearTensors();
        List<Tensor> tensors = attribute.asTensors();
        for (int i = 0; i < tensors.size(); i++) {
          int index = i;
          builder.addTensors(encodeTensor(tensors.get(i), null, written -> {
            List<Tensor> updated = new ArrayList<>(node.attribute(attribute.name()).asTensors());
            updated.set(index, written);
            node.setAttribute(attribute.withValue(List.copyOf(updated)));
          }));
        }
      }
      case GRAPH -> builder.setG(encodeGraph(attribute.asGraph()));
      case GRAPHS -> {
        builder.clearGraphs();
        for (Graph graph : attribute.asGraphs()) {
          builder.addGraphs(encodeGraph(graph));
        }
      }
      case SPARSE_TENSOR -> builder.setSparseTensor((SparseTensorProto) attribute.value());
      case SPARSE_TENSORS -> {
        @SuppressWarnings("unchecked")
        List<SparseTensorProto> sparse = (List<SparseTensorProto>) attribute.value();
        builder.clearSparseTensors().addAllSparseTensors(sparse);
      }
      case TYPE_PROTO -> builder.setTp((TypeProto) attribute.value());
      case TYPE_PROTOS -> {
        @SuppressWarnings("unchecked")
        List<TypeProto> types = (List<TypeProto>) attribute.value();
        builder.clearTypeProtos().addAllTypeProtos(types);
      }
      case UNDEFINED -> {
        // Nothing to write beyond what the original carried.
      }
    }
    return builder.build();
  }

  TensorProto encodeStandaloneTensor(Tensor tensor, String name) {
    return encodeTensor(tensor, name, written -> {});
  }

  /**
   * Encodes a tensor inline or as a reference into the data file (recording where its bytes go).
   * {@code name} overrides the tensor's own name (initializers take their value's name).
   */
  private TensorProto encodeTensor(Tensor tensor, String name, Consumer<Tensor> repoint) {
    boolean external = options.goesExternal(tensor) && !(attributesInline && name == null);
    TensorProto.Builder builder;
    if (tensor instanceof InlineTensor inline) {
      if (!external) {
        TensorProto proto = inline.proto();
        inlineBytes += tensor.byteSize();
        checkInlineLimit();
        return name == null || proto.getName().equals(name) ? proto : proto.toBuilder().setName(name).build();
      }
      builder = inline.proto().toBuilder().clearRawData().clearFloatData().clearInt32Data().clearInt64Data().clearDoubleData()
          .clearUint64Data();
    } else if (tensor instanceof ExternalTensor outside && outside.original() != null) {
      builder = outside.original().toBuilder().clearExternalData().clearDataLocation();
      for (StringStringEntryProto entry : outside.original().getExternalDataList()) {
        // Layout keys are rewritten below; a checksum no longer describes the file we write.
        if (!List.of("location", "offset", "length", "checksum").contains(entry.getKey())) {
          builder.addExternalData(entry);
        }
      }
    } else {
      builder = TensorProto.newBuilder().setDataType(tensor.dataType().number());
      for (long dim : tensor.dims()) {
        builder.addDims(dim);
      }
    }
    if (name != null && !builder.getName().equals(name)) {
      builder.setName(name);
    }
    if (external) {
      long offset = align(dataEnd);
      placements.add(new Placement(tensor, offset, repoint));
      dataEnd = offset + tensor.byteSize();
      List<StringStringEntryProto> kept = new ArrayList<>(builder.getExternalDataList());
      builder.clearExternalData()
          .addExternalData(entry("location", dataFileName))
          .addExternalData(entry("offset", Long.toString(offset)))
          .addExternalData(entry("length", Long.toString(tensor.byteSize())))
          .addAllExternalData(kept)
          .setDataLocation(TensorProto.DataLocation.EXTERNAL);
    } else {
      inlineBytes += tensor.byteSize();
      checkInlineLimit();
      // Zero-copy: the bytes stay in their map or buffer until the writer streams them out.
      builder.setRawData(UnsafeByteOperations.unsafeWrap(tensor.bytes()));
    }
    return builder.build();
  }

  private void checkInlineLimit() {
    if (inlineBytes > ModelReader.MAX_PROTO_BYTES - (64L << 20)) {
      throw new KilnException.Unsupported(
          "the model's inline tensors exceed " + inlineBytes + " bytes, past protobuf's 2 GiB limit; write with an external-data threshold");
    }
  }

  private long align(long position) {
    long alignment = options.alignment();
    return (position + alignment - 1) / alignment * alignment;
  }

  private static StringStringEntryProto entry(String key, String value) {
    return StringStringEntryProto.newBuilder().setKey(key).setValue(value).build();
  }

  /** Writes a string field only when it differs from what was read, keeping the file's presence bits. */
  private static void setString(boolean had, String was, String now, Consumer<String> set, Runnable clear) {
    if (had && was.equals(now)) {
      return;
    }
    if (now.isEmpty()) {
      clear.run();
    } else {
      set.accept(now);
    }
  }
}
