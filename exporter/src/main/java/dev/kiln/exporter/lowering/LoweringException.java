package dev.kiln.exporter.lowering;

/** A lowering cannot express this call in ONNX; the interpreter adds the op, module and code line. */
public final class LoweringException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public LoweringException(String message) {
    super(message);
  }
}
