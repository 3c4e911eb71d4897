package dev.kiln.graph;

import com.google.protobuf.ByteString;
import dev.kiln.graph.proto.OnnxProto.GraphProto;
import dev.kiln.graph.proto.OnnxProto.ModelProto;
import dev.kiln.graph.proto.OnnxProto.NodeProto;
import dev.kiln.graph.proto.OnnxProto.OperatorSetIdProto;
import dev.kiln.graph.proto.OnnxProto.StringStringEntryProto;
import dev.kiln.graph.proto.OnnxProto.TensorProto;
import dev.kiln.graph.proto.OnnxProto.TensorShapeProto;
import dev.kiln.graph.proto.OnnxProto.TypeProto;
import dev.kiln.graph.proto.OnnxProto.ValueInfoProto;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** Hand-built protobufs for tests that need files no well-behaved writer would produce. */
final class Protos {
  private Protos() {}

  static ModelProto model(GraphProto graph) {
    return ModelProto.newBuilder()
        .setIrVersion(8)
        .setProducerName("kiln-test")
        .addOpsetImport(OperatorSetIdProto.newBuilder().setDomain("").setVersion(17))
        .setGraph(graph)
        .build();
  }

  static NodeProto node(String opType, List<String> inputs, List<String> outputs) {
    return NodeProto.newBuilder().setOpType(opType).addAllInput(inputs).addAllOutput(outputs).build();
  }

  static ValueInfoProto floatInfo(String name, long... dims) {
    TensorShapeProto.Builder shape = TensorShapeProto.newBuilder();
    for (long dim : dims) {
      shape.addDimBuilder().setDimValue(dim);
    }
    return ValueInfoProto.newBuilder()
        .setName(name)
        .setType(TypeProto.newBuilder().setTensorType(TypeProto.Tensor.newBuilder().setElemType(1).setShape(shape)))
        .build();
  }

  static TensorProto floatTensor(String name, long[] dims, float... values) {
    ByteBuffer raw = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    for (float value : values) {
      raw.putFloat(value);
    }
    TensorProto.Builder tensor = TensorProto.newBuilder().setName(name).setDataType(1).setRawData(ByteString.copyFrom(raw.array()));
    for (long dim : dims) {
      tensor.addDims(dim);
    }
    return tensor.build();
  }

  /** A FLOAT initializer whose data lives externally, with the given entries verbatim. */
  static TensorProto externalTensor(String name, long[] dims, String... keyValues) {
    TensorProto.Builder tensor = TensorProto.newBuilder().setName(name).setDataType(1).setDataLocation(TensorProto.DataLocation.EXTERNAL);
    for (long dim : dims) {
      tensor.addDims(dim);
    }
    for (int i = 0; i < keyValues.length; i += 2) {
      tensor.addExternalData(StringStringEntryProto.newBuilder().setKey(keyValues[i]).setValue(keyValues[i + 1]));
    }
    return tensor.build();
  }

  /** y = x + w: the smallest model with one initializer, used as a carrier for hostile tensors. */
  static ModelProto addModel(TensorProto weight) {
    long[] dims = weight.getDimsList().stream().mapToLong(Long::longValue).toArray();
    return model(GraphProto.newBuilder()
        .setName("carrier")
        .addInput(floatInfo("x", dims))
        .addInitializer(weight)
        .addNode(node("Add", List.of("x", weight.getName()), List.of("y")))
        .addOutput(floatInfo("y", dims))
        .build());
  }

  static Path write(Path file, ModelProto model) {
    return write(file, model.toByteArray());
  }

  static Path write(Path file, byte[] bytes) {
    try {
      Files.createDirectories(file.toAbsolutePath().getParent());
      Files.write(file, bytes);
      return file;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  static byte[] floats(float... values) {
    ByteBuffer raw = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    for (float value : values) {
      raw.putFloat(value);
    }
    return raw.array();
  }
}
