package dev.kiln.graph;

/**
 * Where {@link ModelWriter} puts tensor data.
 *
 * <ul>
 *   <li>{@link #keepLayout()} (the default): tensors read inline stay inline, external ones go to the data
 *       file, tensors Kiln computed go external from {@code externalThreshold} bytes on;
 *   <li>{@link #externalAbove(long)}: every tensor of at least that many bytes goes to the data file;
 *   <li>{@link #allInline()}: everything inside the .onnx (refused when that would pass 2 GiB).
 * </ul>
 *
 * External tensors all go to ONE data file next to the model ({@code dataFileName}, default
 * {@code <model file name>.data}), each starting at a multiple of {@code alignment} so it can be mapped.
 */
public record WriteOptions(Mode mode, long externalThreshold, String dataFileName, int alignment) {
  public enum Mode {
    KEEP_LAYOUT,
    THRESHOLD,
    ALL_INLINE
  }

  public static final long DEFAULT_COMPUTED_THRESHOLD = 1L << 20;
  public static final int DEFAULT_ALIGNMENT = 4096;

  public WriteOptions {
    if (alignment <= 0 || Integer.bitCount(alignment) != 1) {
      throw new IllegalArgumentException("alignment must be a power of two, not " + alignment);
    }
    if (externalThreshold < 0) {
      throw new IllegalArgumentException("negative threshold " + externalThreshold);
    }
    if (dataFileName != null
        && (dataFileName.isEmpty() || dataFileName.contains("/") || dataFileName.contains("\\") || dataFileName.equals("..")
            || dataFileName.equals("."))) {
      throw new IllegalArgumentException("data file name must be a plain file name, not '" + dataFileName + "'");
    }
  }

  public static WriteOptions keepLayout() {
    return new WriteOptions(Mode.KEEP_LAYOUT, DEFAULT_COMPUTED_THRESHOLD, null, DEFAULT_ALIGNMENT);
  }

  public static WriteOptions defaults() {
    return keepLayout();
  }

  public static WriteOptions externalAbove(long bytes) {
    return new WriteOptions(Mode.THRESHOLD, bytes, null, DEFAULT_ALIGNMENT);
  }

  public static WriteOptions allInline() {
    return new WriteOptions(Mode.ALL_INLINE, Long.MAX_VALUE, null, DEFAULT_ALIGNMENT);
  }

  public WriteOptions withDataFileName(String name) {
    return new WriteOptions(mode, externalThreshold, name, alignment);
  }

  public WriteOptions withAlignment(int bytes) {
    return new WriteOptions(mode, externalThreshold, dataFileName, bytes);
  }

  boolean goesExternal(Tensor tensor) {
    if (tensor.dataType() == DataType.STRING) {
      return false;
    }
    return switch (mode) {
      case ALL_INLINE -> false;
      case THRESHOLD -> tensor.byteSize() >= externalThreshold;
      case KEEP_LAYOUT -> tensor instanceof ExternalTensor || (tensor instanceof ComputedTensor && tensor.byteSize() >= externalThreshold);
    };
  }
}
