package dev.kiln.exporter.archive;

import dev.kiln.common.KilnException;
import dev.kiln.exporter.archive.PickleObjects.ModuleObject;
import dev.kiln.exporter.archive.PickleObjects.TensorRecord;
import dev.kiln.exporter.archive.PickleObjects.Tuple;
import dev.kiln.graph.ExternalTensor;
import dev.kiln.graph.Tensor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * A TorchScript archive as {@code torch.jit.save} writes it: one top folder holding {@code data.pkl} (the module
 * tree), {@code constants.pkl}, {@code code/__torch__/**.py} and the storages under {@code data/}. Storages are
 * never read here: a tensor becomes an {@link ExternalTensor} pointing into the .pt file, checked to lie inside
 * its entry.
 */
public final class TorchArchive {
  private final Path file;
  private final ZipIndex zip;
  private final String top;
  private final long version;
  private final ModuleObject root;
  private final List<Object> constants;
  private final Map<String, String> code;

  private TorchArchive(Path file, ZipIndex zip, String top, long version, ModuleObject root, List<Object> constants, Map<String, String> code) {
    this.file = file;
    this.zip = zip;
    this.top = top;
    this.version = version;
    this.root = root;
    this.constants = constants;
    this.code = code;
  }

  public static TorchArchive open(Path file) {
    ZipIndex zip = ZipIndex.open(file);
    String top = null;
    for (String name : zip.entries().keySet()) {
      int slash = name.indexOf('/');
      String folder = slash < 0 ? "" : name.substring(0, slash + 1);
      if (top == null) {
        top = folder;
      } else if (!top.equals(folder)) {
        throw ZipIndex.bad(file, "entries " + ZipIndex.quote(top) + " and " + ZipIndex.quote(name) + " are not under one top folder"
            + " (not a TorchScript archive)");
      }
    }
    if (top == null || top.isEmpty()) {
      throw ZipIndex.bad(file, "not a TorchScript archive (no top folder)");
    }
    ZipIndex.Entry versionEntry = zip.entry(top + "version");
    if (versionEntry == null) {
      versionEntry = zip.entry(top + ".data/version");
    }
    if (versionEntry == null) {
      throw ZipIndex.bad(file, "not a TorchScript archive (no version record at " + top + "version or " + top + ".data/version)");
    }
    long version;
    String versionText = new String(zip.readAll(versionEntry), StandardCharsets.UTF_8).trim();
    try {
      version = Long.parseLong(versionText);
    } catch (NumberFormatException e) {
      throw ZipIndex.bad(file, "version record " + ZipIndex.quote(versionEntry.name()) + " holds " + ZipIndex.quote(versionText) + ", expected a number");
    }
    if (version < 1 || version > 20) {
      throw ZipIndex.bad(file, "archive version " + version + " (expected 1 to 20)");
    }
    Object rootObject = SafeUnpickler.load(file + "!" + top + "data.pkl", "data/", zip.readAll(required(zip, file, top + "data.pkl")));
    if (!(rootObject instanceof ModuleObject module)) {
      throw ZipIndex.bad(file, top + "data.pkl does not hold a module (a TorchScript archive of torch.jit.trace or torch.jit.script)");
    }
    List<Object> constants = List.of();
    ZipIndex.Entry constantsEntry = zip.entry(top + "constants.pkl");
    if (constantsEntry != null) {
      Object value = SafeUnpickler.load(file + "!" + constantsEntry.name(), "constants/", zip.readAll(constantsEntry));
      if (!(value instanceof Tuple tuple)) {
        throw ZipIndex.bad(file, constantsEntry.name() + " does not hold a tuple of constants");
      }
      constants = tuple.items();
    }
    Map<String, String> code = new TreeMap<>();
    String codeFolder = top + "code/";
    for (ZipIndex.Entry entry : zip.entries().values()) {
      if (entry.name().startsWith(codeFolder) && entry.name().endsWith(".py")) {
        code.put(entry.name().substring(top.length()), new String(zip.readAll(entry), StandardCharsets.UTF_8));
      }
    }
    return new TorchArchive(file, zip, top, version, module, constants, code);
  }

  private static ZipIndex.Entry required(ZipIndex zip, Path file, String name) {
    ZipIndex.Entry entry = zip.entry(name);
    if (entry == null) {
      throw ZipIndex.bad(file, "not a TorchScript archive (no " + name + ")");
    }
    return entry;
  }

  public Path file() {
    return file;
  }

  public long version() {
    return version;
  }

  public ModuleObject root() {
    return root;
  }

  public List<Object> constants() {
    return constants;
  }

  /** Source files by path relative to the top folder ({@code code/__torch__/models.py}). */
  public Map<String, String> code() {
    return code;
  }

  /**
   * The tensor's bytes as an external tensor pointing into the archive. The storage must be stored (not deflated)
   * and the tensor's elements must lie inside its entry; views with gaps are refused (torch saves parameters
   * contiguous).
   */
  public Tensor tensor(TensorRecord record, String where) {
    String entryName = storageEntryName(record);
    ZipIndex.Entry entry = zip.entry(entryName);
    if (entry == null) {
      throw ZipIndex.bad(file, where + ": storage " + ZipIndex.quote(entryName) + " is missing");
    }
    if (!entry.stored()) {
      throw ZipIndex.bad(file, "storage " + ZipIndex.quote(entryName) + " is compressed (torch stores storages uncompressed)");
    }
    long elementBytes = record.storage().dataType().bitWidth() / 8;
    long storageBytes;
    long tensorBytes;
    try {
      record.numel();
      storageBytes = Math.multiplyExact(record.storage().numel(), elementBytes);
      tensorBytes = Math.multiplyExact(record.numel(), elementBytes);
      Math.addExact(Math.multiplyExact(record.storageOffset(), elementBytes), tensorBytes);
    } catch (ArithmeticException e) {
      throw ZipIndex.bad(file, "storage " + ZipIndex.quote(entryName) + " declares a size that overflows");
    }
    if (storageBytes > entry.size()) {
      throw ZipIndex.bad(file, "storage " + ZipIndex.quote(entryName) + " declares " + storageBytes + " bytes but its entry holds "
          + entry.size() + " (a storage past its entry)");
    }
    if (!record.contiguous()) {
      throw new KilnException.Unsupported(file + ": " + where + " is a strided view of storage " + ZipIndex.quote(entryName)
          + " (only contiguous tensors are read)");
    }
    long start = record.storageOffset() * elementBytes;
    if (record.storageOffset() + record.numel() > record.storage().numel() || start + tensorBytes > entry.size()) {
      throw ZipIndex.bad(file, where + ": tensor of " + tensorBytes + " bytes at offset " + start + " lies past the end of storage "
          + ZipIndex.quote(entryName) + " (" + entry.size() + " bytes; a storage past its entry)");
    }
    return ExternalTensor.of(file.toAbsolutePath(), entry.dataOffset() + start, tensorBytes, record.storage().dataType(), record.sizes());
  }

  /** A small tensor's values as little-endian bytes (constants folded at export time). */
  public ByteBuffer smallTensorBytes(TensorRecord record, String where) {
    Tensor tensor = tensor(record, where);
    if (tensor.byteSize() > (1 << 20)) {
      throw new KilnException.Unsupported(file + ": " + where + " is too large to fold as a constant");
    }
    return tensor.bytes().duplicate().order(ByteOrder.LITTLE_ENDIAN);
  }

  private String storageEntryName(TensorRecord record) {
    return top + record.storage().folder() + record.storage().key();
  }
}
