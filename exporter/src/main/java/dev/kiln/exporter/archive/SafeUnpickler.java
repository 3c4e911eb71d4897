package dev.kiln.exporter.archive;

import dev.kiln.common.KilnException;
import dev.kiln.exporter.archive.PickleObjects.Global;
import dev.kiln.exporter.archive.PickleObjects.ModuleObject;
import dev.kiln.exporter.archive.PickleObjects.StorageRef;
import dev.kiln.exporter.archive.PickleObjects.TensorRecord;
import dev.kiln.exporter.archive.PickleObjects.Tuple;
import dev.kiln.graph.DataType;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A pickle reader that executes nothing. It understands the opcodes torch's pickler writes (protocol 2) and
 * builds plain data; GLOBAL accepts exactly the names torch writes for a traced module (its {@code __torch__}
 * classes, {@code torch._utils._rebuild_tensor_v2}, the {@code torch.*Storage} types, {@code
 * collections.OrderedDict}) and refuses any other name on sight; REDUCE runs only those two allow-listed
 * callables, re-implemented here as data constructors.
 */
public final class SafeUnpickler {
  /** The storage classes torch names in persistent ids, and the element type each holds. */
  static final Map<String, DataType> STORAGE_TYPES = Map.ofEntries(
      Map.entry("FloatStorage", DataType.FLOAT), Map.entry("DoubleStorage", DataType.DOUBLE),
      Map.entry("HalfStorage", DataType.FLOAT16), Map.entry("BFloat16Storage", DataType.BFLOAT16),
      Map.entry("LongStorage", DataType.INT64), Map.entry("IntStorage", DataType.INT32),
      Map.entry("ShortStorage", DataType.INT16), Map.entry("CharStorage", DataType.INT8),
      Map.entry("ByteStorage", DataType.UINT8), Map.entry("BoolStorage", DataType.BOOL));

  private static final Object MARK = new Object();
  private static final Global REBUILD_TENSOR = new Global("torch._utils", "_rebuild_tensor_v2");
  private static final Global ORDERED_DICT = new Global("collections", "OrderedDict");

  private final String source;
  private final String storageFolder;
  private final ByteBuffer data;
  private final List<Object> stack = new ArrayList<>();
  private final Map<Long, Object> memo = new HashMap<>();

  private SafeUnpickler(String source, String storageFolder, byte[] bytes) {
    this.source = source;
    this.storageFolder = storageFolder;
    this.data = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
  }

  /**
   * Reads one pickle; {@code source} names the entry in messages, {@code storageFolder} is where its storages
   * live ({@code data/} for data.pkl, {@code constants/} for constants.pkl).
   */
  public static Object load(String source, String storageFolder, byte[] bytes) {
    try {
      return new SafeUnpickler(source, storageFolder, bytes).run();
    } catch (java.nio.BufferUnderflowException | IndexOutOfBoundsException e) {
      throw new KilnException.BadInput(source + ": pickle ends in the middle of an opcode");
    }
  }

  /** Whether GLOBAL may name this: only what torch writes for a traced module. */
  static boolean allowed(String module, String name) {
    if (module.equals("__torch__") || module.startsWith("__torch__.")) {
      return isIdentifier(name);
    }
    return (module.equals("torch") && STORAGE_TYPES.containsKey(name)) || REBUILD_TENSOR.equals(new Global(module, name))
        || ORDERED_DICT.equals(new Global(module, name));
  }

  private Object run() {
    while (true) {
      int opcode = data.get() & 0xFF;
      switch (opcode) {
        case 0x80 -> { // PROTO
          int protocol = data.get() & 0xFF;
          if (protocol > 5) {
            throw fail("pickle protocol " + protocol + " (expected 2)");
          }
        }
        case 0x95 -> data.getLong(); // FRAME: a length hint only
        case '.' -> { // STOP
          return pop();
        }
        case '(' -> push(MARK);
        case ')' -> push(new Tuple(List.of()));
        case ']' -> push(new ArrayList<>());
        case '}' -> push(new LinkedHashMap<>());
        case 'N' -> push(PickleObjects.NONE);
        case 0x88 -> push(Boolean.TRUE);
        case 0x89 -> push(Boolean.FALSE);
        case 'J' -> push((long) data.getInt());
        case 'K' -> push((long) (data.get() & 0xFF));
        case 'M' -> push((long) (data.getShort() & 0xFFFF));
        case 0x8a -> push(readLong(data.get() & 0xFF)); // LONG1
        case 'G' -> { // BINFLOAT: big-endian, unlike every other number in a pickle
          push(Double.longBitsToDouble(Long.reverseBytes(data.getLong())));
        }
        case 'X' -> push(readString(data.getInt()));
        case 0x8c -> push(readString(data.get() & 0xFF)); // SHORT_BINUNICODE
        case 'q' -> memo.put((long) (data.get() & 0xFF), peek());
        case 'r' -> memo.put((long) data.getInt() & 0xFFFFFFFFL, peek());
        case 0x94 -> memo.put((long) memo.size(), peek()); // MEMOIZE
        case 'h' -> push(memoGet(data.get() & 0xFF));
        case 'j' -> push(memoGet(data.getInt() & 0xFFFFFFFFL));
        case 't' -> push(new Tuple(popMark()));
        case 0x85 -> push(new Tuple(List.of(pop())));
        case 0x86 -> {
          Object second = pop();
          push(new Tuple(List.of(pop(), second)));
        }
        case 0x87 -> {
          Object third = pop();
          Object second = pop();
          push(new Tuple(List.of(pop(), second, third)));
        }
        case 'l' -> push(new ArrayList<>(popMark()));
        case 'd' -> {
          List<Object> items = popMark();
          push(toDict(items));
        }
        case 'a' -> {
          Object item = pop();
          list(peek()).add(item);
        }
        case 'e' -> {
          List<Object> items = popMark();
          list(peek()).addAll(items);
        }
        case 's' -> {
          Object value = pop();
          Object key = hashable(pop());
          dict(peek()).put(key, value);
        }
        case 'u' -> {
          List<Object> items = popMark();
          dict(peek()).putAll(toDict(items));
        }
        case 'c' -> push(global(readLine(), readLine()));
        case 0x93 -> { // STACK_GLOBAL
          Object name = pop();
          Object module = pop();
          if (!(module instanceof String moduleName) || !(name instanceof String globalName)) {
            throw fail("STACK_GLOBAL with non-string names");
          }
          push(global(moduleName, globalName));
        }
        case 'Q' -> push(persistent(pop())); // BINPERSID
        case 'R' -> { // REDUCE
          Object arguments = pop();
          push(reduce(pop(), arguments));
        }
        case 0x81 -> { // NEWOBJ
          Object arguments = pop();
          Object type = pop();
          if (!(type instanceof Global global) || !global.module().startsWith("__torch__")) {
            throw fail("NEWOBJ on " + describe(type) + " (only __torch__ module classes are built)");
          }
          if (!(arguments instanceof Tuple tuple) || !tuple.items().isEmpty()) {
            throw fail("NEWOBJ of " + global.qualified() + " with arguments (torch passes none)");
          }
          push(new ModuleObject(global.qualified(), new LinkedHashMap<>()));
        }
        case 'b' -> { // BUILD
          Object state = pop();
          Object target = peek();
          if (!(target instanceof ModuleObject module) || !(state instanceof Map<?, ?> map)) {
            throw fail("BUILD on " + describe(target) + " (only __torch__ module state is accepted)");
          }
          for (Map.Entry<?, ?> entry : map.entrySet()) {
            if (!(entry.getKey() instanceof String key)) {
              throw fail("module attribute name is not a string in " + module.className());
            }
            module.state().put(key, entry.getValue());
          }
        }
        case '0' -> pop();
        case '2' -> push(peek());
        default -> throw fail(String.format("pickle opcode 0x%02x is not accepted (not written by torch for traced modules)", opcode));
      }
    }
  }

  private Object global(String module, String name) {
    if (!allowed(module, name)) {
      throw fail("refused pickle global " + ZipIndex.quote(module + "." + name)
          + " (not a class or function torch writes for traced modules; nothing was executed)");
    }
    return new Global(module, name);
  }

  private Object reduce(Object callable, Object arguments) {
    if (!(callable instanceof Global global) || !(arguments instanceof Tuple tuple)) {
      throw fail("REDUCE on " + describe(callable) + " (only torch._utils._rebuild_tensor_v2 and collections.OrderedDict are run)");
    }
    if (global.equals(ORDERED_DICT)) {
      if (!tuple.items().isEmpty()) {
        throw fail("collections.OrderedDict with arguments (torch passes none)");
      }
      return new LinkedHashMap<>();
    }
    if (global.equals(REBUILD_TENSOR)) {
      List<Object> items = tuple.items();
      if (items.size() < 4 || !(items.get(0) instanceof StorageRef storage) || !(items.get(1) instanceof Long offset)) {
        throw fail("_rebuild_tensor_v2 without (storage, offset, size, stride)");
      }
      long[] sizes = longs(items.get(2));
      long[] strides = longs(items.get(3));
      if (sizes == null || strides == null) {
        throw fail("_rebuild_tensor_v2 with a size or stride that is not a tuple of integers");
      }
      if (sizes.length != strides.length || offset < 0) {
        throw fail("_rebuild_tensor_v2 with " + sizes.length + " sizes and " + strides.length + " strides");
      }
      for (int axis = 0; axis < sizes.length; axis++) {
        if (sizes[axis] < 0 || strides[axis] < 0) {
          throw fail("_rebuild_tensor_v2 with a negative size or stride");
        }
      }
      return new TensorRecord(storage, offset, sizes, strides);
    }
    throw fail("REDUCE on " + ZipIndex.quote(global.qualified()) + " (only torch._utils._rebuild_tensor_v2 and collections.OrderedDict are run)");
  }

  private Object persistent(Object id) {
    if (id instanceof Tuple tuple && tuple.items().size() == 5 && "storage".equals(tuple.items().get(0))
        && tuple.items().get(1) instanceof Global type && type.module().equals("torch") && STORAGE_TYPES.containsKey(type.name())
        && tuple.items().get(2) instanceof String key && tuple.items().get(4) instanceof Long numel && numel >= 0) {
      if (!key.matches("[A-Za-z0-9_.]+") || key.contains("..")) {
        throw fail("storage key " + ZipIndex.quote(key) + " is not a plain name");
      }
      return new StorageRef(storageFolder, key, STORAGE_TYPES.get(type.name()), numel);
    }
    throw fail("persistent id " + describe(id) + " (expected ('storage', torch.<Type>Storage, key, device, numel))");
  }

  private static long[] longs(Object value) {
    if (!(value instanceof Tuple tuple)) {
      return null;
    }
    long[] result = new long[tuple.items().size()];
    for (int index = 0; index < result.length; index++) {
      if (!(tuple.items().get(index) instanceof Long number)) {
        return null;
      }
      result[index] = number;
    }
    return result;
  }

  private Map<Object, Object> toDict(List<Object> items) {
    if (items.size() % 2 != 0) {
      throw fail("dictionary with an odd number of items");
    }
    Map<Object, Object> map = new LinkedHashMap<>();
    for (int index = 0; index < items.size(); index += 2) {
      map.put(hashable(items.get(index)), items.get(index + 1));
    }
    return map;
  }

  /**
   * A dictionary key as Python allows one: None, a string, number, bool, bytes, a global, or a tuple of those. A list
   * or dict is unhashable in Python (TypeError), and as a Java map key a container that holds itself would recurse
   * in hashCode until the stack overflows (a fuzz finding).
   */
  private Object hashable(Object key) {
    return hashable(key, 0);
  }

  private Object hashable(Object key, int depth) {
    if (depth > 100) {
      throw fail("dictionary key of tuples nested deeper than 100");
    }
    if (key == null || key instanceof String || key instanceof Number || key instanceof Boolean || key instanceof byte[]
        || key instanceof Global) {
      return key;
    }
    if (key instanceof Tuple tuple) {
      tuple.items().forEach(item -> hashable(item, depth + 1));
      return key;
    }
    throw fail("dictionary key of unhashable type " + describe(key));
  }

  @SuppressWarnings("unchecked")
  private List<Object> list(Object value) {
    if (value instanceof List<?> list && !(value instanceof Tuple)) {
      return (List<Object>) list;
    }
    throw fail("APPEND to " + describe(value));
  }

  @SuppressWarnings("unchecked")
  private Map<Object, Object> dict(Object value) {
    if (value instanceof Map<?, ?> map) {
      return (Map<Object, Object>) map;
    }
    throw fail("SETITEM on " + describe(value));
  }

  private Object memoGet(long index) {
    Object value = memo.get(index);
    if (value == null) {
      throw fail("memo entry " + index + " read before it was written");
    }
    return value;
  }

  private long readLong(int length) {
    if (length > 8) {
      throw fail("integer of " + length + " bytes");
    }
    long value = 0;
    for (int index = 0; index < length; index++) {
      value |= (long) (data.get() & 0xFF) << (8 * index);
    }
    if (length > 0 && length < 8 && (value & (1L << (8 * length - 1))) != 0) {
      value |= -1L << (8 * length);
    }
    return value;
  }

  private String readString(long length) {
    if (length < 0 || length > data.remaining()) {
      throw fail("string of " + length + " bytes past the end of the pickle");
    }
    byte[] bytes = new byte[(int) length];
    data.get(bytes);
    return new String(bytes, StandardCharsets.UTF_8);
  }

  private String readLine() {
    StringBuilder line = new StringBuilder();
    while (true) {
      byte character = data.get();
      if (character == '\n') {
        return line.toString();
      }
      if (line.length() > 1000) {
        throw fail("GLOBAL name longer than 1000 characters");
      }
      line.append((char) (character & 0xFF));
    }
  }

  private void push(Object value) {
    if (stack.size() > 1_000_000) {
      throw fail("pickle stack deeper than a million entries");
    }
    stack.add(value);
  }

  private Object pop() {
    if (stack.isEmpty()) {
      throw fail("pickle pops an empty stack");
    }
    Object value = stack.remove(stack.size() - 1);
    if (value == MARK) {
      throw fail("pickle pops a MARK as a value");
    }
    return value;
  }

  private Object peek() {
    if (stack.isEmpty() || stack.get(stack.size() - 1) == MARK) {
      throw fail("pickle reads an empty stack");
    }
    return stack.get(stack.size() - 1);
  }

  private List<Object> popMark() {
    int mark = stack.lastIndexOf(MARK);
    if (mark < 0) {
      throw fail("pickle has no MARK to pop to");
    }
    List<Object> items = new ArrayList<>(stack.subList(mark + 1, stack.size()));
    stack.subList(mark, stack.size()).clear();
    return items;
  }

  private static boolean isIdentifier(String name) {
    return name.matches("[A-Za-z_][A-Za-z0-9_]*");
  }

  private static String describe(Object value) {
    if (value instanceof Global global) {
      return ZipIndex.quote(global.qualified());
    }
    return value == null ? "nothing" : value.getClass().getSimpleName();
  }

  private KilnException.BadInput fail(String message) {
    return new KilnException.BadInput(source + ": " + message);
  }
}
