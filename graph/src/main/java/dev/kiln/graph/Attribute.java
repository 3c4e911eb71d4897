package dev.kiln.graph;

import com.google.protobuf.ByteString;
import com.google.protobuf.Message;
import dev.kiln.common.Printable;
import dev.kiln.graph.proto.OnnxProto.AttributeProto;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A node attribute: a name, a kind and an immutable value. Changing an attribute means replacing it
 * ({@link Node#setAttribute}); a reader-made attribute remembers its protobuf so an unchanged one is
 * written back exactly (doc string, unknown fields, IR-1 attributes without a type field).
 */
public final class Attribute {
  /** Attribute kinds with their ONNX AttributeType numbers. */
  public enum Kind {
    UNDEFINED(0),
    FLOAT(1),
    INT(2),
    STRING(3),
    TENSOR(4),
    GRAPH(5),
    FLOATS(6),
    INTS(7),
    STRINGS(8),
    TENSORS(9),
    GRAPHS(10),
    SPARSE_TENSOR(11),
    SPARSE_TENSORS(12),
    TYPE_PROTO(13),
    TYPE_PROTOS(14);

    private final int number;

    Kind(int number) {
      this.number = number;
    }

    public int number() {
      return number;
    }

    static Kind fromNumber(int number) {
      for (Kind kind : values()) {
        if (kind.number == number) {
          return kind;
        }
      }
      return null;
    }
  }

  private final String name;
  private final Kind kind;
  private final Object value;
  private final String refAttrName;
  final AttributeProto original;

  Attribute(String name, Kind kind, Object value, String refAttrName, AttributeProto original) {
    this.name = name;
    this.kind = kind;
    this.value = value;
    this.refAttrName = refAttrName;
    this.original = original;
  }

  public static Attribute ofFloat(String name, float value) {
    return new Attribute(name, Kind.FLOAT, value, null, null);
  }

  public static Attribute ofInt(String name, long value) {
    return new Attribute(name, Kind.INT, value, null, null);
  }

  public static Attribute ofString(String name, String value) {
    return new Attribute(name, Kind.STRING, ByteString.copyFromUtf8(value), null, null);
  }

  public static Attribute ofBytes(String name, byte[] value) {
    return new Attribute(name, Kind.STRING, ByteString.copyFrom(value), null, null);
  }

  public static Attribute ofTensor(String name, Tensor value) {
    return new Attribute(name, Kind.TENSOR, value, null, null);
  }

  /** A graph attribute (If/Loop/Scan body); the graph becomes owned by the node the attribute is set on. */
  public static Attribute ofGraph(String name, Graph value) {
    return new Attribute(name, Kind.GRAPH, value, null, null);
  }

  public static Attribute ofFloats(String name, float... values) {
    return new Attribute(name, Kind.FLOATS, values.clone(), null, null);
  }

  public static Attribute ofInts(String name, long... values) {
    return new Attribute(name, Kind.INTS, values.clone(), null, null);
  }

  public static Attribute ofStrings(String name, String... values) {
    List<ByteString> bytes = new ArrayList<>();
    for (String value : values) {
      bytes.add(ByteString.copyFromUtf8(value));
    }
    return new Attribute(name, Kind.STRINGS, List.copyOf(bytes), null, null);
  }

  public static Attribute ofTensors(String name, List<Tensor> values) {
    return new Attribute(name, Kind.TENSORS, List.copyOf(values), null, null);
  }

  public static Attribute ofGraphs(String name, List<Graph> values) {
    return new Attribute(name, Kind.GRAPHS, List.copyOf(values), null, null);
  }

  /** The same attribute (name, kind, original protobuf) with another value; used when tensors move files. */
  Attribute withValue(Object newValue) {
    return new Attribute(name, kind, newValue, refAttrName, original);
  }

  public String name() {
    return name;
  }

  public Kind kind() {
    return kind;
  }

  /** Inside a function body: the calling node's attribute this one refers to; null otherwise. */
  public String refAttrName() {
    return refAttrName;
  }

  /** The raw value: Float, Long, ByteString, Tensor, Graph, float[], long[], List, or a protobuf message. */
  public Object value() {
    return value instanceof float[] floats ? floats.clone() : value instanceof long[] longs ? longs.clone() : value;
  }

  public float asFloat() {
    return (Float) expect(Kind.FLOAT);
  }

  public long asLong() {
    return (Long) expect(Kind.INT);
  }

  public int asInt() {
    return Math.toIntExact(asLong());
  }

  public String asString() {
    return ((ByteString) expect(Kind.STRING)).toString(StandardCharsets.UTF_8);
  }

  public byte[] asBytes() {
    return rawBytes().toByteArray();
  }

  /** The STRING value as stored, for the writer. */
  ByteString rawBytes() {
    return (ByteString) expect(Kind.STRING);
  }

  public Tensor asTensor() {
    return (Tensor) expect(Kind.TENSOR);
  }

  public Graph asGraph() {
    return (Graph) expect(Kind.GRAPH);
  }

  public float[] asFloats() {
    return ((float[]) expect(Kind.FLOATS)).clone();
  }

  public long[] asLongs() {
    return ((long[]) expect(Kind.INTS)).clone();
  }

  public List<String> asStrings() {
    @SuppressWarnings("unchecked")
    List<ByteString> strings = (List<ByteString>) expect(Kind.STRINGS);
    return strings.stream().map(string -> string.toString(StandardCharsets.UTF_8)).toList();
  }

  @SuppressWarnings("unchecked")
  public List<Tensor> asTensors() {
    return (List<Tensor>) expect(Kind.TENSORS);
  }

  @SuppressWarnings("unchecked")
  public List<Graph> asGraphs() {
    return (List<Graph>) expect(Kind.GRAPHS);
  }

  /** Subgraphs this attribute holds (empty for non-graph kinds). */
  public List<Graph> graphs() {
    if (kind == Kind.GRAPH) {
      return List.of((Graph) value);
    }
    if (kind == Kind.GRAPHS) {
      return asGraphs();
    }
    return List.of();
  }

  private Object expect(Kind expected) {
    if (kind != expected) {
      throw new IllegalStateException("attribute '" + name + "' is " + kind + ", not " + expected);
    }
    return value;
  }

  /** Stable text of the value, used by the printer. */
  String valueText() {
    if (refAttrName != null && !refAttrName.isEmpty()) {
      return "@" + refAttrName;
    }
    return switch (kind) {
      case FLOAT -> floatText((Float) value);
      case INT -> value.toString();
      case STRING -> quote(((ByteString) value).toString(StandardCharsets.UTF_8));
      case FLOATS -> {
        float[] floats = (float[]) value;
        StringBuilder text = new StringBuilder("[");
        for (int i = 0; i < floats.length; i++) {
          text.append(i > 0 ? "," : "").append(floatText(floats[i]));
        }
        yield text.append(']').toString();
      }
      case INTS -> Arrays.toString((long[]) value).replace(" ", "");
      case STRINGS -> asStrings().stream().map(Attribute::quote).toList().toString().replace(", ", ",");
      case TENSOR -> GraphPrinter.tensorText((Tensor) value, true);
      case TENSORS -> asTensors().stream().map(tensor -> GraphPrinter.tensorText(tensor, true)).toList().toString();
      case GRAPH -> "<graph " + quote(((Graph) value).name()) + ">";
      case GRAPHS -> "<" + asGraphs().size() + " graphs>";
      case UNDEFINED -> refAttrName != null ? "@" + refAttrName : "<undefined>";
      default -> "<" + kind.name().toLowerCase(java.util.Locale.ROOT) + " " + ((Message) value).getSerializedSize() + " bytes>";
    };
  }

  static String floatText(float value) {
    return Float.toString(value);
  }

  static String quote(String text) {
    // Printable.name escapes backslashes, newlines and every other control, so a quoted name stays on its line.
    return '"' + Printable.name(text).replace("\"", "\\\"") + '"';
  }

  @Override
  public String toString() {
    return name + "=" + valueText();
  }
}
