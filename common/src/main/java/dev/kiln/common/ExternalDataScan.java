package dev.kiln.common;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.function.BiConsumer;

/**
 * A minimal protobuf walk of an ONNX file that visits every TensorProto (in graphs, node attributes, sparse
 * tensors, subgraphs, functions and training graphs) and checks those marked {@code data_location: EXTERNAL}
 * with {@link ExternalDataRules}. It knows only the field numbers on the paths to a tensor (onnx.proto);
 * everything else is skipped by wire type, so raw weights are jumped over, never copied. A field whose wire
 * type disagrees with the schema is skipped as protobuf parsers do with unknown fields. Malformed wire data
 * (a varint or length running past its message, nesting deeper than protobuf's own limit of 100) is bad input.
 */
final class ExternalDataScan {
  private static final int MAX_DEPTH = 100;
  private static final int VARINT = 0;
  private static final int FIXED64 = 1;
  private static final int LENGTH_DELIMITED = 2;
  private static final int START_GROUP = 3;
  private static final int END_GROUP = 4;
  private static final int FIXED32 = 5;
  private static final int EXTERNAL = 1;

  /** Which message a length-delimited field holds, on the paths from ModelProto to TensorProto. */
  private enum Message { MODEL, GRAPH, NODE, ATTRIBUTE, TENSOR, SPARSE_TENSOR, FUNCTION, TRAINING_INFO, ENTRY, NONE }

  private final ByteBuffer bytes;
  private final ExternalDataRules rules;
  private final BiConsumer<String, String> operators;

  private ExternalDataScan(ByteBuffer bytes, ExternalDataRules rules, BiConsumer<String, String> operators) {
    this.bytes = bytes;
    this.rules = rules;
    this.operators = operators;
  }

  static void scan(Path model, ExternalDataRules rules) {
    scan(model, rules, (domain, type) -> {});
  }

  static void scan(Path model, ExternalDataRules rules, BiConsumer<String, String> operators) {
    ByteBuffer bytes;
    try (FileChannel channel = FileChannel.open(model, StandardOpenOption.READ)) {
      long size = channel.size();
      if (size > Integer.MAX_VALUE) {
        throw rules.malformed("the file is " + size + " bytes, over protobuf's 2 GiB limit (large weights belong in external data)");
      }
      bytes = channel.map(FileChannel.MapMode.READ_ONLY, 0, size);
    } catch (IOException e) {
      throw new KilnException.BadInput("cannot read model " + model + ": " + e.getMessage(), e);
    }
    scan(bytes, rules, operators);
  }

  /** Scans a serialized ModelProto held in memory (tests and fuzzing feed bytes directly). */
  static void scan(ByteBuffer bytes, ExternalDataRules rules, BiConsumer<String, String> operators) {
    ByteBuffer view = bytes.slice();
    new ExternalDataScan(view, rules, operators).message(Message.MODEL, 0, view.remaining(), 0);
  }

  /** The message type of field {@code number} inside a {@code parent} message, NONE for fields not on a path to a tensor. */
  private static Message child(Message parent, int number) {
    return switch (parent) {
      case MODEL -> number == 7 ? Message.GRAPH : number == 20 ? Message.TRAINING_INFO : number == 25 ? Message.FUNCTION : Message.NONE;
      case TRAINING_INFO -> number == 1 || number == 2 ? Message.GRAPH : Message.NONE;
      case FUNCTION -> number == 7 ? Message.NODE : Message.NONE;
      case GRAPH -> number == 1 ? Message.NODE : number == 5 ? Message.TENSOR : number == 15 ? Message.SPARSE_TENSOR : Message.NONE;
      case NODE -> number == 5 ? Message.ATTRIBUTE : Message.NONE;
      case ATTRIBUTE -> switch (number) {
        case 5, 10 -> Message.TENSOR;
        case 6, 11 -> Message.GRAPH;
        case 22, 23 -> Message.SPARSE_TENSOR;
        default -> Message.NONE;
      };
      case SPARSE_TENSOR -> number == 1 || number == 2 ? Message.TENSOR : Message.NONE;
      case TENSOR -> number == 13 ? Message.ENTRY : Message.NONE;
      default -> Message.NONE;
    };
  }

  /** What a TensorProto says about its data: enough to apply the rules. */
  private static final class TensorFacts {
    String name = "";
    int dataType;
    final List<Long> dims = new ArrayList<>();
    int dataLocation;
    String location;
    String offset;
    String length;
  }

  private void message(Message type, int start, int end, int depth) {
    if (depth > MAX_DEPTH) {
      throw rules.malformed("messages nest deeper than " + MAX_DEPTH + " levels");
    }
    TensorFacts tensor = type == Message.TENSOR ? new TensorFacts() : null;
    String opType = null;
    String domain = "";
    int position = start;
    while (position < end) {
      long tag = varint(position, end);
      position = next;
      int wireType = (int) (tag & 7);
      long number = tag >>> 3;
      if (number == 0 || number > 536_870_911L) {
        throw rules.malformed("field number " + number + " at byte " + position);
      }
      if (wireType == VARINT && tensor != null) {
        long value = varint(position, end);
        position = next;
        if (number == 1) {
          tensor.dims.add(value);
        } else if (number == 2) {
          tensor.dataType = (int) value;
        } else if (number == 14) {
          tensor.dataLocation = (int) value;
        }
      } else if (wireType == LENGTH_DELIMITED) {
        int fieldEnd = payloadEnd(position, end);
        position = next;
        if (tensor != null) {
          readTensorField(tensor, (int) number, position, fieldEnd);
        } else if (type == Message.NODE && (number == 4 || number == 7)) {
          if (number == 4) {
            opType = text(position, fieldEnd);
          } else {
            domain = text(position, fieldEnd);
          }
        } else {
          Message child = child(type, (int) number);
          if (child != Message.NONE) {
            message(child, position, fieldEnd, depth + 1);
          }
        }
        position = fieldEnd;
      } else {
        position = skipValue(wireType, (int) number, position, end, depth);
      }
    }
    if (tensor != null && tensor.dataLocation == EXTERNAL) {
      check(tensor);
    }
    if (opType != null) {
      operators.accept(domain, opType);
    }
  }

  private void readTensorField(TensorFacts tensor, int number, int start, int end) {
    switch (number) {
      case 1 -> {
        // packed dims
        int position = start;
        while (position < end) {
          tensor.dims.add(varint(position, end));
          position = next;
        }
      }
      case 8 -> tensor.name = text(start, end);
      case 13 -> {
        String key = null;
        String value = null;
        int position = start;
        while (position < end) {
          long tag = varint(position, end);
          position = next;
          int wireType = (int) (tag & 7);
          long field = tag >>> 3;
          if (wireType == LENGTH_DELIMITED) {
            int fieldEnd = payloadEnd(position, end);
            position = next;
            if (field == 1) {
              key = text(position, fieldEnd);
            } else if (field == 2) {
              value = text(position, fieldEnd);
            }
            position = fieldEnd;
          } else {
            position = skipValue(wireType, (int) field, position, end, 1);
          }
        }
        // Later entries override earlier ones, as the graph reader's loop over the entries does.
        if ("location".equals(key)) {
          tensor.location = value == null ? "" : value;
        } else if ("offset".equals(key)) {
          tensor.offset = value == null ? "" : value;
        } else if ("length".equals(key)) {
          tensor.length = value == null ? "" : value;
        }
      }
      default -> {
        // raw_data, typed data and the rest are not needed by the rules
      }
    }
  }

  private void check(TensorFacts tensor) {
    ExternalDataRules.Range range = rules.resolve(tensor.name, tensor.location, tensor.offset, tensor.length);
    long[] dims = tensor.dims.stream().mapToLong(Long::longValue).toArray();
    rules.checkLength(tensor.name, tensor.location, typeName(tensor.dataType), bitsOf(tensor.dataType), dims, range.length());
  }

  /** Bits per element of the ONNX data types (onnx.proto's TensorProto.DataType numbers); 0 for STRING and unknown. */
  static int bitsOf(int dataType) {
    return switch (dataType) {
      case 2, 3, 9, 17, 18, 19, 20, 24 -> 8;
      case 4, 5, 10, 16 -> 16;
      case 1, 6, 12 -> 32;
      case 7, 11, 13, 14 -> 64;
      case 15 -> 128;
      case 21, 22, 23 -> 4;
      default -> 0;
    };
  }

  private static final String[] TYPE_NAMES = {"UNDEFINED", "FLOAT", "UINT8", "INT8", "UINT16", "INT16", "INT32", "INT64", "STRING",
      "BOOL", "FLOAT16", "DOUBLE", "UINT32", "UINT64", "COMPLEX64", "COMPLEX128", "BFLOAT16", "FLOAT8E4M3FN", "FLOAT8E4M3FNUZ",
      "FLOAT8E5M2", "FLOAT8E5M2FNUZ", "UINT4", "INT4", "FLOAT4E2M1", "FLOAT8E8M0"};

  static String typeName(int dataType) {
    return dataType >= 0 && dataType < TYPE_NAMES.length ? TYPE_NAMES[dataType] : "data type " + dataType;
  }

  /** Where the last {@link #varint} ended. */
  private int next;

  private long varint(int position, int end) {
    long result = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (position >= end) {
        throw rules.malformed("a varint runs past its message at byte " + position);
      }
      byte current = bytes.get(position++);
      result |= (long) (current & 0x7f) << shift;
      if (current >= 0) {
        next = position;
        return result;
      }
    }
    throw rules.malformed("a varint longer than 10 bytes at byte " + position);
  }

  /** Skips the value of a field (wire type and number already read) that the scan does not need. */
  private int skipValue(int wireType, int number, int position, int end, int depth) {
    switch (wireType) {
      case VARINT -> {
        varint(position, end);
        return next;
      }
      case FIXED64 -> {
        return skip(position, 8, end);
      }
      case FIXED32 -> {
        return skip(position, 4, end);
      }
      case LENGTH_DELIMITED -> {
        return payloadEnd(position, end);
      }
      case START_GROUP -> {
        return skipGroup(position, end, number, depth + 1);
      }
      default -> throw rules.malformed("wire type " + wireType + " at byte " + position);
    }
  }

  /** Reads a length prefix at {@code position}; returns where the payload ends ({@link #next} is where it starts). */
  private int payloadEnd(int position, int end) {
    long length = varint(position, end);
    if (length > end - next) {
      throw rules.malformed("a field of " + length + " bytes at byte " + next + " runs past its message");
    }
    return next + (int) length;
  }

  private int skip(int position, int count, int end) {
    if (count > end - position) {
      throw rules.malformed("a fixed-width field runs past its message at byte " + position);
    }
    return position + count;
  }

  /** Skips a (deprecated) group up to its matching end tag. */
  private int skipGroup(int position, int end, int number, int depth) {
    if (depth > MAX_DEPTH) {
      throw rules.malformed("groups nest deeper than " + MAX_DEPTH + " levels");
    }
    while (position < end) {
      long tag = varint(position, end);
      position = next;
      int wireType = (int) (tag & 7);
      int field = (int) (tag >>> 3);
      if (wireType == END_GROUP) {
        if (field != number) {
          throw rules.malformed("group " + number + " ends with the tag of group " + field);
        }
        return position;
      }
      position = skipValue(wireType, field, position, end, depth);
    }
    throw rules.malformed("group " + number + " has no end tag");
  }

  private String text(int start, int end) {
    byte[] data = new byte[end - start];
    bytes.get(start, data);
    return new String(data, StandardCharsets.UTF_8);
  }
}
