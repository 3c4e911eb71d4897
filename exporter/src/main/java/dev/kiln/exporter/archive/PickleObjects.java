package dev.kiln.exporter.archive;

import dev.kiln.graph.DataType;
import java.util.List;
import java.util.Map;

/** What the safe unpickler builds: plain data, never an executed callable. */
public final class PickleObjects {
  private PickleObjects() {}

  /** Python's None (the stack cannot hold Java null). */
  public static final Object NONE = new Object() {
    @Override
    public String toString() {
      return "None";
    }
  };

  /** A Python tuple. */
  public record Tuple(List<Object> items) {}

  /** A class or function named by a GLOBAL opcode; only allow-listed names are ever built. */
  public record Global(String module, String name) {
    public String qualified() {
      return module + "." + name;
    }
  }

  /** A {@code __torch__} module instance: its class name and the attributes BUILD gave it. */
  public record ModuleObject(String className, Map<String, Object> state) {}

  /** A storage named by a persistent id: the entry {@code <folder><key>} of {@code numel} elements. */
  public record StorageRef(String folder, String key, DataType dataType, long numel) {}

  /** {@code torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)}. */
  public record TensorRecord(StorageRef storage, long storageOffset, long[] sizes, long[] strides) {
    public boolean contiguous() {
      long expected = 1;
      for (int axis = sizes.length - 1; axis >= 0; axis--) {
        if (sizes[axis] != 1 && strides[axis] != expected) {
          return false;
        }
        expected *= sizes[axis];
      }
      return true;
    }

    /** The element count; {@code ArithmeticException} for sizes whose product does not fit a long. */
    public long numel() {
      long count = 1;
      for (long size : sizes) {
        count = Math.multiplyExact(count, size);
      }
      return count;
    }
  }
}
