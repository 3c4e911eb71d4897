package dev.kiln.graph;

import dev.kiln.graph.proto.OnnxProto.TensorShapeProto;
import dev.kiln.graph.proto.OnnxProto.TypeProto;
import java.util.ArrayList;
import java.util.List;

/** The part of an ONNX TypeProto the IR models, used to tell whether a value's type changed since reading. */
record TypeInfo(DataType dataType, Shape shape, TypeProto nonTensorType) {
  static final TypeInfo NONE = new TypeInfo(null, null, null);

  static TypeInfo of(Value value) {
    return new TypeInfo(value.recordedDataType(), value.recordedShape(), value.nonTensorType());
  }

  static TypeInfo decode(TypeProto type) {
    if (type.hasTensorType()) {
      TypeProto.Tensor tensor = type.getTensorType();
      DataType dataType = tensor.hasElemType() ? DataType.fromNumberOrNull(tensor.getElemType()) : null;
      Shape shape = tensor.hasShape() ? decodeShape(tensor.getShape()) : null;
      return new TypeInfo(dataType, shape, null);
    }
    if (type.getValueCase() == TypeProto.ValueCase.VALUE_NOT_SET) {
      return NONE;
    }
    return new TypeInfo(null, null, type);
  }

  static Shape decodeShape(TensorShapeProto shape) {
    List<Shape.Dim> dims = new ArrayList<>(shape.getDimCount());
    for (TensorShapeProto.Dimension dim : shape.getDimList()) {
      dims.add(switch (dim.getValueCase()) {
        case DIM_VALUE -> new Shape.Known(dim.getDimValue());
        case DIM_PARAM -> new Shape.Symbolic(dim.getDimParam());
        default -> Shape.UNKNOWN;
      });
    }
    return Shape.of(dims);
  }

  /** A fresh TypeProto for this information; null when nothing is known. */
  TypeProto encode() {
    if (nonTensorType != null) {
      return nonTensorType;
    }
    if (dataType == null && shape == null) {
      return null;
    }
    TypeProto.Tensor.Builder tensor = TypeProto.Tensor.newBuilder();
    if (dataType != null) {
      tensor.setElemType(dataType.number());
    }
    if (shape != null) {
      tensor.setShape(encodeShape(shape));
    }
    return TypeProto.newBuilder().setTensorType(tensor).build();
  }

  static TensorShapeProto encodeShape(Shape shape) {
    TensorShapeProto.Builder builder = TensorShapeProto.newBuilder();
    for (Shape.Dim dim : shape.dims()) {
      TensorShapeProto.Dimension.Builder dimension = builder.addDimBuilder();
      if (dim instanceof Shape.Known known) {
        dimension.setDimValue(known.value());
      } else if (dim instanceof Shape.Symbolic symbolic) {
        dimension.setDimParam(symbolic.name());
      }
    }
    return builder.build();
  }
}
