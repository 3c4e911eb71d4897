package dev.kiln.graph;

import com.google.protobuf.CodedInputStream;
import com.google.protobuf.ExtensionRegistryLite;
import com.google.protobuf.InvalidProtocolBufferException;
import dev.kiln.common.KilnException;
import dev.kiln.graph.proto.OnnxProto.ModelProto;
import dev.kiln.graph.proto.OnnxProto.TensorProto;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Reads .onnx files. The file is memory-mapped and parsed with aliasing, so inline weights stay views of
 * the mapping instead of heap copies; external data is resolved relative to the model's folder and left
 * on disk until someone asks for it.
 */
public final class ModelReader {
  /** protobuf messages, and so .onnx files, cannot exceed 2 GiB. */
  static final long MAX_PROTO_BYTES = Integer.MAX_VALUE;

  private ModelReader() {}

  public static Model read(Path path) {
    ModelProto proto = parse(path, ModelProto.parser(), "ONNX model");
    try {
      return new ProtoDecoder(path).decode(proto);
    } catch (StackOverflowError e) {
      throw new KilnException.BadInput(path + ": graph nesting is too deep to read");
    }
  }

  /** Reads a single serialized TensorProto (the test_data_set_N/input_M.pb files of ONNX test cases). */
  public static Tensor readTensor(Path path) {
    TensorProto proto = parse(path, TensorProto.parser(), "ONNX tensor");
    return new ProtoDecoder(path).decodeTensor(proto, "tensor '" + proto.getName() + "'");
  }

  /** The raw protobuf of a model file, parsed the same way (aliasing, size checks, clean errors). */
  public static ModelProto readProto(Path path) {
    return parse(path, ModelProto.parser(), "ONNX model");
  }

  static <T> T parse(Path path, com.google.protobuf.Parser<T> parser, String what) {
    ByteBuffer mapped = map(path);
    try {
      CodedInputStream input = CodedInputStream.newInstance(mapped);
      input.enableAliasing(true);
      input.setSizeLimit(Integer.MAX_VALUE);
      input.setRecursionLimit(1000);
      T message = parser.parseFrom(input, ExtensionRegistryLite.getEmptyRegistry());
      return message;
    } catch (InvalidProtocolBufferException e) {
      throw new KilnException.BadInput(path + ": not a valid " + what + " (" + describe(e) + ")", e);
    } catch (RuntimeException e) {
      throw new KilnException.BadInput(path + ": not a valid " + what + " (" + e.getClass().getSimpleName() + ": " + e.getMessage() + ")", e);
    }
  }

  private static String describe(InvalidProtocolBufferException e) {
    String message = e.getMessage() == null ? "malformed protobuf" : e.getMessage();
    if (message.contains("ended unexpectedly") || message.contains("truncated")) {
      return "the file is truncated: " + message;
    }
    return message;
  }

  private static ByteBuffer map(Path path) {
    if (!Files.exists(path)) {
      throw new KilnException.BadInput(path + ": no such file");
    }
    if (!Files.isRegularFile(path)) {
      throw new KilnException.BadInput(path + ": not a regular file");
    }
    try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ)) {
      long size = channel.size();
      if (size > MAX_PROTO_BYTES) {
        throw new KilnException.BadInput(path + ": " + size + " bytes; a protobuf file cannot exceed 2 GiB (large weights belong in external data)");
      }
      if (size == 0) {
        throw new KilnException.BadInput(path + ": the file is empty");
      }
      // The mapping stays valid after the channel closes; aliased ByteStrings keep it reachable.
      return channel.map(FileChannel.MapMode.READ_ONLY, 0, size);
    } catch (NoSuchFileException e) {
      throw new KilnException.BadInput(path + ": no such file");
    } catch (IOException e) {
      throw new KilnException.BadInput(path + ": cannot read: " + e.getMessage(), e);
    }
  }
}
