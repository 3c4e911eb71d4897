package dev.kiln.exporter.lowering;

import dev.kiln.exporter.archive.PickleObjects;
import dev.kiln.graph.Attribute;
import dev.kiln.graph.DataType;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Value;
import java.util.ArrayList;
import java.util.List;

/** Tensor creation, casts and indexing: arange, full, empty, to, argmax, index, triu, mean. */
final class CreationLowerings {
  private CreationLowerings() {}

  private static DataType dtypeOr(Object dtype, DataType fallback) {
    if (dtype == null || dtype == PickleObjects.NONE) {
      return fallback;
    }
    Long code = Values.constantLong(dtype);
    if (code == null) {
      throw new LoweringException("dtype " + Values.describe(dtype));
    }
    return Values.scalarType(code);
  }

  /** {@code arange(end)}, {@code arange(start, end)}, {@code arange(start, end, step)}: folded when constant, else Range. */
  static Object arange(Arguments arguments, Emitter emitter) {
    List<Object> numbers = new ArrayList<>();
    for (Object value : arguments.positional()) {
      if (value instanceof Long || value instanceof Double || value instanceof SymbolicInt || value instanceof TensorValue) {
        numbers.add(value);
      }
    }
    int first = numbers.size();
    List<Object> rest = arguments.positional().subList(first, arguments.positional().size());
    Object dtype = arguments.keywords().containsKey("dtype") ? arguments.keywords().get("dtype") : rest.isEmpty() ? PickleObjects.NONE : rest.get(0);
    Object start = numbers.size() >= 2 ? numbers.get(0) : Long.valueOf(0);
    Object end = numbers.size() >= 2 ? numbers.get(1) : numbers.get(0);
    Object step = numbers.size() >= 3 ? numbers.get(2) : Long.valueOf(1);
    boolean floating = start instanceof Double || end instanceof Double || step instanceof Double
        || (end instanceof TensorValue tensor && tensor.dataType().isFloatingPoint());
    DataType type = dtypeOr(dtype, floating ? DataType.FLOAT : DataType.INT64);
    Double startConstant = constantNumber(start);
    Double endConstant = constantNumber(end);
    Double stepConstant = constantNumber(step);
    if (startConstant != null && endConstant != null && stepConstant != null) {
      int count = (int) Math.max(0, Math.ceil((endConstant - startConstant) / stepConstant));
      double[] values = new double[count];
      for (int index = 0; index < count; index++) {
        values[index] = startConstant + index * stepConstant;
      }
      return Values.cast(TensorValue.constant(DataType.DOUBLE, new long[] {count}, values), type, emitter);
    }
    DataType rangeType = type.isFloatingPoint() ? type : DataType.INT64;
    Value range = emitter.op(Onnx.RANGE, List.of(Values.castTo(start, rangeType, emitter).value(emitter),
        Values.castTo(end, rangeType, emitter).value(emitter), Values.castTo(step, rangeType, emitter).value(emitter)));
    return Values.cast(TensorValue.of(range, rangeType, 1), type, emitter);
  }

  private static Double constantNumber(Object value) {
    if (value instanceof Double number) {
      return number;
    }
    if (value instanceof Long number) {
      return number.doubleValue();
    }
    if (value instanceof TensorValue tensor && tensor.isConstant() && tensor.constantValues().length == 1) {
      return tensor.constantValues()[0];
    }
    return null;
  }

  /** {@code full(size, v)}: ConstantOfShape when v is known, else Expand of v. */
  static Object full(Arguments arguments, Emitter emitter) {
    Object fill = arguments.get("fill_value");
    DataType fallback = fill instanceof Double ? DataType.FLOAT : fill instanceof Boolean ? DataType.BOOL
        : fill instanceof TensorValue tensor ? (tensor.dataType().isFloatingPoint() ? DataType.FLOAT : tensor.dataType()) : DataType.INT64;
    return filled(arguments, fill, dtypeOr(arguments.get("dtype"), fallback), emitter);
  }

  static Object constantFill(Arguments arguments, Emitter emitter, double value) {
    return filled(arguments, Double.valueOf(value), dtypeOr(arguments.get("dtype"), DataType.FLOAT), emitter);
  }

  /** {@code empty} has no defined content: zeros, so the export is deterministic (torch's export does the same). */
  static Object empty(Arguments arguments, Emitter emitter) {
    return filled(arguments, Double.valueOf(0), dtypeOr(arguments.get("dtype"), DataType.FLOAT), emitter);
  }

  private static Object filled(Arguments arguments, Object fill, DataType type, Emitter emitter) {
    Object size = arguments.get("size");
    int rank = size instanceof List<?> list ? list.size() : 1;
    Value shape = Values.intList(size, emitter);
    TensorValue value = Values.castTo(fill, type, emitter);
    if (value.isConstant()) {
      Value result = emitter.op(Onnx.CONSTANT_OF_SHAPE, List.of(shape),
          Attribute.ofTensor("value", Emitter.tensor(type, new long[] {1}, new double[] {value.constantValues()[0]})));
      return TensorValue.of(result, type, rank);
    }
    return TensorValue.of(emitter.op(Onnx.EXPAND, List.of(value.value(emitter), shape)), type, rank);
  }

  /** {@code to(x, dtype, …)}, {@code to(x, device, dtype, …)}, {@code to(x, other, …)}: a Cast or nothing. */
  static Object to(Arguments arguments, Emitter emitter) {
    TensorValue input = Values.asTensor(arguments.positional().get(0), emitter);
    Object dtype = arguments.keywords().get("dtype");
    List<Object> positional = arguments.positional();
    if (dtype == null && positional.size() > 1) {
      Object second = positional.get(1);
      if (second instanceof Device) {
        dtype = positional.size() > 2 ? positional.get(2) : PickleObjects.NONE;
      } else if (second instanceof TensorValue other) {
        return Values.cast(input, other.dataType(), emitter);
      } else {
        dtype = second;
      }
    }
    if (dtype == null || dtype == PickleObjects.NONE) {
      return input;
    }
    return Values.cast(input, dtypeOr(dtype, input.dataType()), emitter);
  }

  static Object argmax(Arguments arguments, Emitter emitter) {
    TensorValue input = arguments.tensor("self");
    boolean keep = arguments.constantBool("keepdim");
    Value x = input.value(emitter);
    int rank = input.rank();
    int axis;
    if (arguments.isNone("dim")) {
      x = emitter.op(Onnx.RESHAPE, List.of(x, emitter.constantLongs(-1)));
      rank = 1;
      axis = 0;
    } else {
      axis = Values.normalizeDim(arguments.constantLong("dim"), rank);
    }
    Value result = emitter.op(Onnx.ARG_MAX, List.of(x), Attribute.ofInt("axis", axis), Attribute.ofInt("keepdims", keep ? 1 : 0));
    return TensorValue.of(result, DataType.INT64, keep ? rank : rank - 1);
  }

  /**
   * Advanced indexing {@code x[i0, i1, …]} with leading index tensors: one is a Gather on dim 0; several of one
   * shape are stacked on a last axis for GatherND (CLIP's pooled output: {@code x[arange(B), argmax(ids)]}).
   */
  static Object index(Arguments arguments, Emitter emitter) {
    TensorValue input = arguments.tensor("self");
    Object indices = arguments.get("indices");
    if (!(indices instanceof List<?> list) || list.isEmpty()) {
      throw new LoweringException("index without index tensors");
    }
    List<TensorValue> tensors = new ArrayList<>();
    for (Object item : list) {
      if (item == PickleObjects.NONE) {
        throw new LoweringException("index with a skipped (None) leading dim");
      }
      TensorValue tensor = Values.asTensor(item, emitter);
      if (tensor.dataType() == DataType.BOOL || tensor.dataType() == DataType.UINT8) {
        throw new LoweringException("index by a boolean mask (its result size depends on the data)");
      }
      tensors.add(Values.cast(tensor, DataType.INT64, emitter));
    }
    if (tensors.size() == 1) {
      TensorValue only = tensors.get(0);
      Value result = emitter.op(Onnx.GATHER, List.of(input.value(emitter), only.value(emitter)), Attribute.ofInt("axis", 0));
      return TensorValue.of(result, input.dataType(), only.rank() + input.rank() - 1);
    }
    int indexRank = tensors.get(0).rank();
    List<Value> stacked = new ArrayList<>();
    for (TensorValue tensor : tensors) {
      if (tensor.rank() != indexRank) {
        throw new LoweringException("index tensors of different ranks");
      }
      stacked.add(emitter.op(Onnx.UNSQUEEZE, List.of(tensor.value(emitter), emitter.constantLongs(-1))));
    }
    Value gathered = emitter.op(Onnx.CONCAT, stacked, Attribute.ofInt("axis", -1));
    Value result = emitter.op(Onnx.GATHER_ND, List.of(input.value(emitter), gathered));
    return TensorValue.of(result, input.dataType(), indexRank + input.rank() - tensors.size());
  }

  static Object triu(Arguments arguments, Emitter emitter) {
    TensorValue input = arguments.tensor("self");
    Value diagonal = emitter.scalarLong(arguments.constantLong("diagonal"));
    Value result = emitter.op(Onnx.TRILU, List.of(input.value(emitter), diagonal), Attribute.ofInt("upper", 1));
    return TensorValue.of(result, input.dataType(), input.rank());
  }

  static Object mean(Arguments arguments, Emitter emitter) {
    TensorValue input = arguments.tensor("self");
    long[] dims = arguments.constantLongs("dim");
    boolean keep = arguments.constantBool("keepdim");
    long[] axes = new long[dims.length];
    for (int index = 0; index < dims.length; index++) {
      axes[index] = Values.normalizeDim(dims[index], input.rank());
    }
    Value result = emitter.op(Onnx.REDUCE_MEAN, List.of(input.value(emitter)), Attribute.ofInts("axes", axes),
        Attribute.ofInt("keepdims", keep ? 1 : 0));
    return TensorValue.of(result, input.dataType(), keep ? input.rank() : input.rank() - dims.length);
  }
}
