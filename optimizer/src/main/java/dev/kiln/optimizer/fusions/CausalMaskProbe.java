package dev.kiln.optimizer.fusions;

import dev.kiln.graph.DataType;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.OpType;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import dev.kiln.graph.infer.ShapeInference;
import dev.kiln.optimizer.engine.Constants;
import java.util.Arrays;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.Map;

/**
 * Proves that an additive attention mask computed from shapes and constants is the causal one, by computing it.
 * The mask's sub-graph (Shape/Gather/Range/Less/Where/Trilu/ConstantOfShape/Expand chains, or a constant) is
 * evaluated on small tensors at two assignments of the model's symbolic sizes (every symbol a different small
 * number, so a mask built from the wrong size shows), and the result must be 0 on and below the diagonal and at
 * most {@value #MASKED} above it, for every query and key position of the scores it is added to. Anything this
 * evaluator cannot compute is a reason to decline, never a guess.
 */
final class CausalMaskProbe {
  /** Above the diagonal a causal mask must push scores to this or below (transformers uses the float minimum). */
  static final double MASKED = -1e4;
  private static final int MAX_ELEMENTS = 1 << 16;
  private static final long[][] ASSIGNMENTS = {{3, 5, 7, 11, 13}, {4, 6, 9, 10, 12}};

  private final ShapeInference shapes;
  private final Map<String, Long> symbols = new HashMap<>();
  private final long[] sizes;
  private final Map<Value, Data> computed = new IdentityHashMap<>();

  private CausalMaskProbe(ShapeInference shapes, long[] sizes) {
    this.shapes = shapes;
    this.sizes = sizes;
  }

  /** Null when {@code mask} is causal for {@code scores} [B,N,T,S] at both probe sizes; else why not. */
  static String disproof(Value mask, Value scores, ShapeInference shapes) {
    for (long[] sizes : ASSIGNMENTS) {
      CausalMaskProbe probe = new CausalMaskProbe(shapes, sizes);
      String reason;
      try {
        reason = probe.check(mask, scores);
      } catch (Unsupported unsupported) {
        reason = "mask not provably causal: " + unsupported.getMessage();
      }
      if (reason != null) {
        return reason;
      }
    }
    return null;
  }

  private String check(Value mask, Value scores) {
    long[] target = concrete(shapes.shape(scores), "scores");
    if (target.length != 4 || target[2] != target[3]) {
      throw new Unsupported("scores are not [B,N,T,T]: " + Arrays.toString(target));
    }
    Data data = evaluate(mask);
    long[] broadcast = broadcastDims(data.dims, target);
    if (!Arrays.equals(broadcast, target)) {
      throw new Unsupported("mask " + Arrays.toString(data.dims) + " does not broadcast to the scores " + Arrays.toString(target));
    }
    Data full = expand(data, target);
    int length = (int) target[2];
    int plane = length * length;
    for (int offset = 0; offset < full.values.length; offset += plane) {
      for (int query = 0; query < length; query++) {
        for (int key = 0; key < length; key++) {
          double value = full.values[offset + query * length + key];
          if (key <= query && value != 0) {
            return "mask is not causal: " + value + " at query " + query + ", key " + key
                + " (a causal mask is 0 on and below the diagonal)";
          }
          if (key > query && !(value <= MASKED)) {
            return "mask is not causal: " + format(value) + " at query " + query + ", key " + key
                + " (a causal mask is <= -1e4 above the diagonal)";
          }
        }
      }
    }
    return null;
  }

  private static String format(double value) {
    return value == Math.rint(value) && Math.abs(value) < 1e15 ? Long.toString((long) value) : Double.toString(value);
  }

  /** A small tensor: element type, dims, values (booleans as 0/1). */
  private record Data(DataType type, long[] dims, double[] values) {
    static Data of(DataType type, long[] dims, double[] values) {
      if (values.length > MAX_ELEMENTS) {
        throw new Unsupported("intermediate of " + values.length + " elements");
      }
      return new Data(type, dims, values);
    }
  }

  private static final class Unsupported extends RuntimeException {
    Unsupported(String message) {
      super(message, null, false, false);
    }
  }

  private long[] concrete(Shape shape, String what) {
    if (shape == null) {
      throw new Unsupported(what + " shape unknown");
    }
    long[] out = new long[shape.rank()];
    for (int i = 0; i < out.length; i++) {
      Shape.Dim dim = shape.dim(i);
      if (dim instanceof Shape.Known known) {
        out[i] = known.value();
      } else if (dim instanceof Shape.Symbolic symbolic) {
        out[i] = symbols.computeIfAbsent(symbolic.name(), name -> sizes[Math.min(symbols.size(), sizes.length - 1)]);
      } else {
        throw new Unsupported(what + " has a size that is neither known nor named: " + shape);
      }
    }
    return out;
  }

  private Data evaluate(Value value) {
    Data known = computed.get(value);
    if (known != null) {
      return known;
    }
    Data result;
    Tensor tensor = Constants.tensor(value);
    if (tensor != null) {
      if (tensor.elementCount() > MAX_ELEMENTS) {
        throw new Unsupported("constant of " + tensor.elementCount() + " elements");
      }
      result = Data.of(tensor.dataType(), tensor.dims(), tensor.doubles());
    } else {
      Node producer = value.producer();
      if (producer == null) {
        throw new Unsupported("mask reads the graph input '" + value.name() + "'");
      }
      result = apply(producer);
    }
    computed.put(value, result);
    return result;
  }

  private Data input(Node node, int index) {
    return evaluate(node.input(index));
  }

  private Data apply(Node node) {
    OpType op = node.opType();
    if (op.equals(Onnx.SHAPE)) {
      // Only the shape is read, never the values: ask inference, with the symbols made concrete.
      Value of = node.input(0);
      long[] dims = computed.containsKey(of) ? computed.get(of).dims : concrete(shapes.shape(of), "'" + of.name() + "'");
      int start = (int) normalize(node.intAttribute("start", 0), dims.length);
      int end = (int) normalize(node.intAttribute("end", dims.length), dims.length);
      return Data.of(DataType.INT64, new long[] {Math.max(0, end - start)},
          Arrays.stream(Arrays.copyOfRange(dims, start, Math.max(start, end))).asDoubleStream().toArray());
    }
    if (op.equals(Onnx.IDENTITY)) {
      return input(node, 0);
    }
    if (op.equals(Onnx.CAST)) {
      Data in = input(node, 0);
      DataType to = DataType.fromNumberOrNull((int) node.intAttribute("to", 0));
      if (to == null) {
        throw new Unsupported("Cast to an unknown type");
      }
      double[] out = in.values.clone();
      for (int i = 0; i < out.length; i++) {
        out[i] = to == DataType.BOOL ? (out[i] != 0 ? 1 : 0) : to.isFloatingPoint() ? (to == DataType.DOUBLE ? out[i] : (float) out[i])
            : (double) (long) out[i];
      }
      return Data.of(to, in.dims, out);
    }
    if (op.equals(Onnx.CONSTANT_OF_SHAPE)) {
      long[] dims = longs(input(node, 0));
      Tensor fill = node.hasAttribute("value") ? node.attribute("value").asTensor() : Tensor.ofFloats(new long[] {1}, 0f);
      double[] out = new double[checkedCount(dims)];
      Arrays.fill(out, fill.doubles()[0]);
      return Data.of(fill.dataType(), dims, out);
    }
    if (op.equals(Onnx.RANGE)) {
      double start = input(node, 0).values[0];
      double limit = input(node, 1).values[0];
      double delta = input(node, 2).values[0];
      int count = (int) Math.max(0, Math.ceil((limit - start) / delta));
      double[] out = new double[count];
      for (int i = 0; i < count; i++) {
        out[i] = start + i * delta;
      }
      return Data.of(input(node, 0).type, new long[] {count}, out);
    }
    if (op.equals(Onnx.UNSQUEEZE) || op.equals(Onnx.SQUEEZE)) {
      Data in = input(node, 0);
      long[] axes = node.inputCount() > 1 && node.input(1) != null ? longs(input(node, 1))
          : node.hasAttribute("axes") ? node.attribute("axes").asLongs() : null;
      return Data.of(in.type, op.equals(Onnx.UNSQUEEZE) ? unsqueezed(in.dims, axes) : squeezed(in.dims, axes), in.values);
    }
    if (op.equals(Onnx.RESHAPE)) {
      Data in = input(node, 0);
      return Data.of(in.type, reshaped(in, longs(input(node, 1)), node.intAttribute("allowzero", 0) == 1), in.values);
    }
    if (op.equals(Onnx.EXPAND)) {
      Data in = input(node, 0);
      long[] dims = broadcastDims(in.dims, longs(input(node, 1)));
      return expand(in, dims);
    }
    if (op.equals(Onnx.CONCAT)) {
      return concat(node);
    }
    if (op.equals(Onnx.GATHER)) {
      return gather(node);
    }
    if (op.equals(Onnx.SLICE)) {
      return slice(node);
    }
    if (op.equals(Onnx.TRILU)) {
      return trilu(node);
    }
    if (op.equals(Onnx.WHERE)) {
      Data condition = input(node, 0);
      Data yes = input(node, 1);
      Data no = input(node, 2);
      long[] dims = broadcastDims(broadcastDims(condition.dims, yes.dims), no.dims);
      double[] c = expand(condition, dims).values;
      double[] a = expand(yes, dims).values;
      double[] b = expand(no, dims).values;
      double[] out = new double[c.length];
      for (int i = 0; i < out.length; i++) {
        out[i] = c[i] != 0 ? a[i] : b[i];
      }
      return Data.of(yes.type, dims, out);
    }
    if (op.equals(Onnx.NOT) || op.equals(Onnx.NEG)) {
      Data in = input(node, 0);
      double[] out = in.values.clone();
      for (int i = 0; i < out.length; i++) {
        out[i] = op.equals(Onnx.NOT) ? (out[i] != 0 ? 0 : 1) : -out[i];
      }
      return Data.of(in.type, in.dims, out);
    }
    return binary(node, op);
  }

  private Data binary(Node node, OpType op) {
    boolean comparison = op.equals(Onnx.LESS) || op.equals(Onnx.LESS_OR_EQUAL) || op.equals(Onnx.GREATER)
        || op.equals(Onnx.GREATER_OR_EQUAL) || op.equals(Onnx.EQUAL) || op.equals(Onnx.AND) || op.equals(Onnx.OR);
    boolean arithmetic = op.equals(Onnx.ADD) || op.equals(Onnx.SUB) || op.equals(Onnx.MUL) || op.equals(Onnx.DIV);
    if (!comparison && !arithmetic) {
      throw new Unsupported("op " + op.name() + " in the mask");
    }
    Data left = input(node, 0);
    Data right = input(node, 1);
    long[] dims = broadcastDims(left.dims, right.dims);
    double[] a = expand(left, dims).values;
    double[] b = expand(right, dims).values;
    double[] out = new double[a.length];
    boolean integer = !left.type.isFloatingPoint();
    for (int i = 0; i < out.length; i++) {
      double x = a[i];
      double y = b[i];
      double r;
      if (op.equals(Onnx.LESS)) r = x < y ? 1 : 0;
      else if (op.equals(Onnx.LESS_OR_EQUAL)) r = x <= y ? 1 : 0;
      else if (op.equals(Onnx.GREATER)) r = x > y ? 1 : 0;
      else if (op.equals(Onnx.GREATER_OR_EQUAL)) r = x >= y ? 1 : 0;
      else if (op.equals(Onnx.EQUAL)) r = x == y ? 1 : 0;
      else if (op.equals(Onnx.AND)) r = x != 0 && y != 0 ? 1 : 0;
      else if (op.equals(Onnx.OR)) r = x != 0 || y != 0 ? 1 : 0;
      else if (op.equals(Onnx.ADD)) r = x + y;
      else if (op.equals(Onnx.SUB)) r = x - y;
      else if (op.equals(Onnx.MUL)) r = x * y;
      else r = integer ? (double) ((long) x / (long) y) : x / y;
      out[i] = comparison || integer || left.type == DataType.DOUBLE ? r : (float) r;
    }
    return Data.of(comparison ? DataType.BOOL : left.type, dims, out);
  }

  private Data concat(Node node) {
    long axis = node.intAttribute("axis", 0);
    Data first = input(node, 0);
    if (first.dims.length != 1 || normalize(axis, 1) != 0) {
      throw new Unsupported("Concat of rank " + first.dims.length + " tensors");
    }
    double[] out = new double[0];
    for (int i = 0; i < node.inputCount(); i++) {
      Data part = input(node, i);
      if (part.dims.length != 1) {
        throw new Unsupported("Concat of rank " + part.dims.length + " tensors");
      }
      double[] joined = Arrays.copyOf(out, out.length + part.values.length);
      System.arraycopy(part.values, 0, joined, out.length, part.values.length);
      out = joined;
    }
    return Data.of(first.type, new long[] {out.length}, out);
  }

  private Data gather(Node node) {
    Data data = input(node, 0);
    Data indices = input(node, 1);
    if (data.dims.length != 1 || normalize(node.intAttribute("axis", 0), 1) != 0) {
      throw new Unsupported("Gather from a rank " + data.dims.length + " tensor");
    }
    double[] out = new double[indices.values.length];
    for (int i = 0; i < out.length; i++) {
      out[i] = data.values[(int) normalize((long) indices.values[i], data.values.length)];
    }
    return Data.of(data.type, indices.dims, out);
  }

  private Data slice(Node node) {
    Data data = input(node, 0);
    if (data.dims.length != 1 || node.inputCount() < 3) {
      throw new Unsupported("Slice of a rank " + data.dims.length + " tensor");
    }
    long length = data.dims[0];
    long start = clamp(normalize((long) input(node, 1).values[0], length), length);
    long end = (long) Math.min(Math.max(input(node, 2).values[0], -length - 1), Long.MAX_VALUE);
    end = end < 0 ? Math.max(0, end + length) : Math.min(end, length);
    long step = node.inputCount() > 4 && node.input(4) != null ? (long) input(node, 4).values[0] : 1;
    if (step != 1) {
      throw new Unsupported("Slice with step " + step);
    }
    double[] out = Arrays.copyOfRange(data.values, (int) start, (int) Math.max(start, end));
    return Data.of(data.type, new long[] {out.length}, out);
  }

  private Data trilu(Node node) {
    Data in = input(node, 0);
    long k = node.inputCount() > 1 && node.input(1) != null ? (long) input(node, 1).values[0] : 0;
    boolean upper = node.intAttribute("upper", 1) == 1;
    int rank = in.dims.length;
    if (rank < 2) {
      throw new Unsupported("Trilu of a rank " + rank + " tensor");
    }
    int rows = (int) in.dims[rank - 2];
    int columns = (int) in.dims[rank - 1];
    double[] out = in.values.clone();
    for (int offset = 0; offset < out.length; offset += rows * columns) {
      for (int row = 0; row < rows; row++) {
        for (int column = 0; column < columns; column++) {
          boolean keep = upper ? column - row >= k : column - row <= k;
          if (!keep) {
            out[offset + row * columns + column] = 0;
          }
        }
      }
    }
    return Data.of(in.type, in.dims, out);
  }

  private static long[] longs(Data data) {
    long[] out = new long[data.values.length];
    for (int i = 0; i < out.length; i++) {
      out[i] = (long) data.values[i];
    }
    return out;
  }

  private static long normalize(long index, long length) {
    return index < 0 ? index + length : index;
  }

  private static long clamp(long index, long length) {
    return Math.max(0, Math.min(index, length));
  }

  private static int checkedCount(long[] dims) {
    long count = 1;
    for (long dim : dims) {
      if (dim < 0) {
        throw new Unsupported("negative size " + dim);
      }
      count *= dim;
      if (count > MAX_ELEMENTS) {
        throw new Unsupported("intermediate of more than " + MAX_ELEMENTS + " elements");
      }
    }
    return (int) count;
  }

  private static long[] unsqueezed(long[] dims, long[] axes) {
    if (axes == null) {
      throw new Unsupported("Unsqueeze without axes");
    }
    int rank = dims.length + axes.length;
    long[] out = new long[rank];
    boolean[] inserted = new boolean[rank];
    for (long axis : axes) {
      inserted[(int) normalize(axis, rank)] = true;
    }
    for (int i = 0, source = 0; i < rank; i++) {
      out[i] = inserted[i] ? 1 : dims[source++];
    }
    return out;
  }

  private static long[] squeezed(long[] dims, long[] axes) {
    boolean[] removed = new boolean[dims.length];
    if (axes == null) {
      for (int i = 0; i < dims.length; i++) {
        removed[i] = dims[i] == 1;
      }
    } else {
      for (long axis : axes) {
        removed[(int) normalize(axis, dims.length)] = true;
      }
    }
    return java.util.stream.IntStream.range(0, dims.length).filter(i -> !removed[i]).mapToLong(i -> dims[i]).toArray();
  }

  private static long[] reshaped(Data in, long[] target, boolean allowZero) {
    long[] out = target.clone();
    int inferred = -1;
    long known = 1;
    for (int i = 0; i < out.length; i++) {
      if (out[i] == 0 && !allowZero) {
        out[i] = in.dims[i];
      }
      if (out[i] == -1) {
        inferred = i;
      } else {
        known *= out[i];
      }
    }
    if (inferred >= 0) {
      out[inferred] = known == 0 ? 0 : in.values.length / known;
    }
    if (checkedCount(out) != in.values.length) {
      throw new Unsupported("Reshape of " + Arrays.toString(in.dims) + " to " + Arrays.toString(target));
    }
    return out;
  }

  /** Numpy broadcasting of two shapes; fails on sizes that do not broadcast. */
  private static long[] broadcastDims(long[] a, long[] b) {
    int rank = Math.max(a.length, b.length);
    long[] out = new long[rank];
    for (int i = 0; i < rank; i++) {
      long x = i < rank - a.length ? 1 : a[i - (rank - a.length)];
      long y = i < rank - b.length ? 1 : b[i - (rank - b.length)];
      if (x != y && x != 1 && y != 1) {
        throw new Unsupported("shapes " + Arrays.toString(a) + " and " + Arrays.toString(b) + " do not broadcast");
      }
      out[i] = x == 1 ? y : x;
    }
    return out;
  }

  /** {@code data} broadcast to {@code dims} (which must be a broadcast of its shape). */
  private static Data expand(Data data, long[] dims) {
    int count = checkedCount(dims);
    if (Arrays.equals(data.dims, dims)) {
      return data;
    }
    int rank = dims.length;
    long[] strides = new long[rank];
    long stride = 1;
    for (int i = data.dims.length - 1, j = rank - 1; j >= 0; i--, j--) {
      long size = i >= 0 ? data.dims[i] : 1;
      strides[j] = size == 1 ? 0 : stride;
      stride *= size;
    }
    double[] out = new double[count];
    long[] index = new long[rank];
    for (int flat = 0; flat < count; flat++) {
      long source = 0;
      for (int j = 0; j < rank; j++) {
        source += index[j] * strides[j];
      }
      out[flat] = data.values[(int) source];
      for (int j = rank - 1; j >= 0; j--) {
        if (++index[j] < dims[j]) {
          break;
        }
        index[j] = 0;
      }
    }
    return Data.of(data.type, dims, out);
  }
}
