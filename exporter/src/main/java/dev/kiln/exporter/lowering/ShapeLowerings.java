package dev.kiln.exporter.lowering;

import dev.kiln.exporter.archive.PickleObjects;
import dev.kiln.graph.Attribute;
import dev.kiln.graph.DataType;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Value;
import java.util.ArrayList;
import java.util.List;

/** Sizes, views, permutations, slices, concatenation and splits. */
final class ShapeLowerings {
  private ShapeLowerings() {}

  /** Traced code writes "to the end" as INT64_MAX; ONNX Slice clamps the same way. */
  static final long END = Long.MAX_VALUE;

  /** {@code aten::size(x, d)} is a symbolic dim; {@code aten::size(x)} a list of them. */
  static Object size(Arguments arguments, Emitter emitter) {
    TensorValue input = Values.asTensor(arguments.positional().get(0), emitter);
    Value value = input.value(emitter);
    String origin = value.isGraphInput() ? value.name() : null;
    if (arguments.count() == 1) {
      List<Object> dims = new ArrayList<>();
      for (int axis = 0; axis < input.rank(); axis++) {
        dims.add(emitter.dim(value, axis, origin == null ? null : origin + "[" + axis + "]"));
      }
      return dims;
    }
    Long dim = Values.constantLong(arguments.positional().get(1));
    if (dim == null) {
      throw new LoweringException("size() with a non-constant dim");
    }
    int axis = Values.normalizeDim(dim, input.rank());
    return emitter.dim(value, axis, origin == null ? null : origin + "[" + axis + "]");
  }

  static Object reshape(Arguments arguments, Emitter emitter, String shapeName) {
    TensorValue input = arguments.tensor("self");
    Object shape = arguments.get(shapeName);
    int rank = shape instanceof List<?> list ? list.size() : 1;
    Value result = emitter.op(Onnx.RESHAPE, List.of(input.value(emitter), Values.intList(shape, emitter)));
    return TensorValue.of(result, input.dataType(), rank);
  }

  static Object flatten(Arguments arguments, Emitter emitter) {
    TensorValue input = arguments.tensor("self");
    if (input.rank() == 0) {
      return TensorValue.of(emitter.op(Onnx.RESHAPE, List.of(input.value(emitter), emitter.constantLongs(1))), input.dataType(), 1);
    }
    int start = Values.normalizeDim(arguments.constantLong("start_dim"), input.rank());
    int end = Values.normalizeDim(arguments.constantLong("end_dim"), input.rank());
    long[] shape = new long[input.rank() - (end - start)];
    for (int axis = 0; axis < shape.length; axis++) {
      // 0 copies the input dim; the flattened run becomes -1.
      shape[axis] = axis == start ? -1 : 0;
    }
    if (end < input.rank() - 1 && start != 0) {
      throw new LoweringException("flatten of a middle run of dims");
    }
    if (start == 0 && end < input.rank() - 1) {
      throw new LoweringException("flatten of leading dims");
    }
    Value result = emitter.op(Onnx.RESHAPE, List.of(input.value(emitter), emitter.constantLongs(shape)));
    return TensorValue.of(result, input.dataType(), shape.length);
  }

  static Object permute(Arguments arguments, Emitter emitter) {
    TensorValue input = arguments.tensor("self");
    long[] dims = arguments.constantLongs("dims");
    long[] permutation = new long[dims.length];
    for (int axis = 0; axis < dims.length; axis++) {
      permutation[axis] = Values.normalizeDim(dims[axis], input.rank());
    }
    Value result = emitter.op(Onnx.TRANSPOSE, List.of(input.value(emitter)), Attribute.ofInts("perm", permutation));
    return TensorValue.of(result, input.dataType(), input.rank());
  }

  static TensorValue transpose(TensorValue input, long first, long second, Emitter emitter) {
    int a = Values.normalizeDim(first, input.rank());
    int b = Values.normalizeDim(second, input.rank());
    if (a == b) {
      return input;
    }
    long[] permutation = new long[input.rank()];
    for (int axis = 0; axis < permutation.length; axis++) {
      permutation[axis] = axis == a ? b : axis == b ? a : axis;
    }
    Value result = emitter.op(Onnx.TRANSPOSE, List.of(input.value(emitter)), Attribute.ofInts("perm", permutation));
    return TensorValue.of(result, input.dataType(), input.rank());
  }

  static Object transpose(Arguments arguments, Emitter emitter) {
    return transpose(arguments.tensor("self"), arguments.constantLong("dim0"), arguments.constantLong("dim1"), emitter);
  }

  static Object unsqueeze(Arguments arguments, Emitter emitter) {
    TensorValue input = arguments.tensor("self");
    int axis = Values.normalizeDim(arguments.constantLong("dim"), input.rank() + 1);
    if (input.isConstant()) {
      long[] dims = new long[input.rank() + 1];
      for (int index = 0, source = 0; index < dims.length; index++) {
        dims[index] = index == axis ? 1 : input.constantDims()[source++];
      }
      return TensorValue.constant(input.dataType(), dims, input.constantValues());
    }
    Value result = emitter.op(Onnx.UNSQUEEZE, List.of(input.value(emitter), emitter.constantLongs(axis)));
    return TensorValue.of(result, input.dataType(), input.rank() + 1);
  }

  static Object squeeze(Arguments arguments, Emitter emitter) {
    TensorValue input = arguments.tensor("self");
    int axis = Values.normalizeDim(arguments.constantLong("dim"), input.rank());
    Value result = emitter.op(Onnx.SQUEEZE, List.of(input.value(emitter), emitter.constantLongs(axis)));
    return TensorValue.of(result, input.dataType(), input.rank() - 1);
  }

  /** {@code slice(x, d, 0, INT64_MAX, 1)} is the identity (torch's export drops it too); others are a Slice. */
  static Object slice(Arguments arguments, Emitter emitter) {
    TensorValue input = arguments.tensor("self");
    int axis = Values.normalizeDim(arguments.constantLong("dim"), input.rank());
    Object start = arguments.get("start");
    Object end = arguments.get("end");
    long step = arguments.constantLong("step");
    Long startConstant = start == PickleObjects.NONE ? Long.valueOf(0) : Values.constantLong(start);
    Long endConstant = end == PickleObjects.NONE ? Long.valueOf(END) : Values.constantLong(end);
    if (step == 1 && startConstant != null && startConstant == 0 && endConstant != null && endConstant == END) {
      return input;
    }
    Value starts = start == PickleObjects.NONE ? emitter.constantLongs(0) : Values.intList(List.of(start), emitter);
    Value ends = end == PickleObjects.NONE ? emitter.constantLongs(END) : Values.intList(List.of(end), emitter);
    Value result = emitter.op(Onnx.SLICE, List.of(input.value(emitter), starts, ends, emitter.constantLongs(axis), emitter.constantLongs(step)));
    return TensorValue.of(result, input.dataType(), input.rank());
  }

  static Object select(Arguments arguments, Emitter emitter) {
    TensorValue input = arguments.tensor("self");
    int axis = Values.normalizeDim(arguments.constantLong("dim"), input.rank());
    Value index = Values.scalarInt(arguments.get("index"), emitter);
    Value result = emitter.op(Onnx.GATHER, List.of(input.value(emitter), index), Attribute.ofInt("axis", axis));
    return TensorValue.of(result, input.dataType(), input.rank() - 1);
  }

  static Object cat(Arguments arguments, Emitter emitter) {
    Object tensors = arguments.get("tensors");
    if (!(tensors instanceof List<?> list) || list.isEmpty()) {
      throw new LoweringException("cat of " + Values.describe(tensors));
    }
    DataType type = null;
    int rank = 0;
    for (Object item : list) {
      TensorValue tensor = Values.asTensor(item, emitter);
      type = type == null ? tensor.dataType() : Values.promote(TensorValue.of(null, type, 1), TensorValue.of(null, tensor.dataType(), 1));
      rank = Math.max(rank, tensor.rank());
    }
    List<Value> inputs = new ArrayList<>();
    for (Object item : list) {
      inputs.add(Values.castTo(item, type, emitter).value(emitter));
    }
    int axis = Values.normalizeDim(arguments.constantLong("dim"), rank);
    return TensorValue.of(emitter.op(Onnx.CONCAT, inputs, Attribute.ofInt("axis", axis)), type, rank);
  }

  /**
   * {@code chunk(x, n, d)} as torch exports it: Slices whose bounds come from the dim size
   * ({@code Shape → Gather → Div}), so the chunks follow the input's size and the optimizer sees GEGLU's halves.
   */
  static Object chunk(Arguments arguments, Emitter emitter) {
    TensorValue input = arguments.tensor("self");
    long chunks = arguments.constantLong("chunks");
    int axis = Values.normalizeDim(arguments.constantLong("dim"), input.rank());
    Value size = emitter.dim(input.value(emitter), axis, null).value();
    // ceil(size / n) = (size + n - 1) / n: torch's chunk size.
    Value rounded = chunks == 1 ? size : emitter.op(Onnx.ADD, List.of(size, emitter.scalarLong(chunks - 1)));
    Value step = emitter.op(Onnx.DIV, List.of(rounded, emitter.scalarLong(chunks)));
    List<Object> pieces = new ArrayList<>();
    Value axes = emitter.constantLongs(axis);
    for (long index = 0; index < chunks; index++) {
      Value start = index == 0 ? emitter.scalarLong(0) : emitter.op(Onnx.MUL, List.of(step, emitter.scalarLong(index)));
      Value end = emitter.op(Onnx.MUL, List.of(step, emitter.scalarLong(index + 1)));
      Value starts = emitter.op(Onnx.UNSQUEEZE, List.of(start, emitter.constantLongs(0)));
      Value ends = emitter.op(Onnx.UNSQUEEZE, List.of(end, emitter.constantLongs(0)));
      Value piece = emitter.op(Onnx.SLICE, List.of(input.value(emitter), starts, ends, axes));
      pieces.add(TensorValue.of(piece, input.dataType(), input.rank()));
    }
    return pieces;
  }

  /** {@code split(x, sizes, d)} with constant sizes: one Split; an int size needs the dim's size and is chunked. */
  static Object split(Arguments arguments, Emitter emitter) {
    TensorValue input = arguments.tensor("self");
    int axis = Values.normalizeDim(arguments.constantLong("dim"), input.rank());
    Object sizes = arguments.get("split_size");
    if (!(sizes instanceof List<?>)) {
      throw new LoweringException("split with one split size (the number of pieces depends on the traced shape)");
    }
    long[] lengths = arguments.constantLongs("split_size");
    List<Value> outputs = emitter.op(Onnx.SPLIT, List.of(input.value(emitter), emitter.constantLongs(lengths)), lengths.length,
        Attribute.ofInt("axis", axis));
    List<Object> pieces = new ArrayList<>();
    for (Value output : outputs) {
      pieces.add(TensorValue.of(output, input.dataType(), input.rank()));
    }
    return pieces;
  }

  /** {@code expand(x, sizes)}: -1 keeps a dim, which ONNX's broadcasting Expand spells 1. */
  static Object expand(Arguments arguments, Emitter emitter) {
    TensorValue input = arguments.tensor("self");
    Object size = arguments.get("size");
    if (!(size instanceof List<?> list)) {
      throw new LoweringException("expand without a size list");
    }
    List<Object> sizes = new ArrayList<>();
    for (Object item : list) {
      Long constant = Values.constantLong(item);
      sizes.add(constant != null && constant == -1 ? Long.valueOf(1) : item);
    }
    Value result = emitter.op(Onnx.EXPAND, List.of(input.value(emitter), Values.intList(sizes, emitter)));
    return TensorValue.of(result, input.dataType(), Math.max(sizes.size(), input.rank()));
  }

  static Object identity(Arguments arguments, Emitter emitter) {
    return Values.asTensor(arguments.positional().get(0), emitter);
  }

  /** {@code pad(x, [l, r, t, b], 'constant', v)}: torch lists pairs from the last dim; ONNX all begins, then all ends. */
  static Object pad(Arguments arguments, Emitter emitter) {
    TensorValue input = arguments.tensor("self");
    long[] pairs = arguments.constantLongs("pad");
    String mode = arguments.op().equals("constant_pad_nd") ? "constant" : String.valueOf(arguments.get("mode"));
    if (!mode.equals("constant") && !mode.equals("reflect") && !mode.equals("replicate")) {
      throw new LoweringException("pad mode '" + mode + "'");
    }
    int rank = input.rank();
    long[] pads = new long[2 * rank];
    for (int pair = 0; pair < pairs.length / 2; pair++) {
      int axis = rank - 1 - pair;
      pads[axis] = pairs[2 * pair];
      pads[rank + axis] = pairs[2 * pair + 1];
    }
    List<Value> inputs = new ArrayList<>(List.of(input.value(emitter), emitter.constantLongs(pads)));
    Object value = arguments.get("value");
    if (mode.equals("constant") && value != PickleObjects.NONE) {
      inputs.add(Values.castTo(value, input.dataType(), emitter).value(emitter));
    }
    String onnxMode = mode.equals("replicate") ? "edge" : mode;
    Value result = emitter.op(Onnx.PAD, inputs, Attribute.ofString("mode", onnxMode));
    return TensorValue.of(result, input.dataType(), rank);
  }
}
