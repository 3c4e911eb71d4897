package dev.kiln.exporter.lowering;

/** The ONNX form of one aten op: returns a {@link TensorValue}, a list of them, or a Python value. */
@FunctionalInterface
public interface Lowering {
  Object lower(Arguments arguments, Emitter emitter);
}
