package dev.kiln.optimizer.precision;

import dev.kiln.graph.DataType;
import dev.kiln.graph.ExternalTensor;
import dev.kiln.graph.Model;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The weights every session of one mixed-precision search reads, made once: the float32 model's tensors as direct
 * buffers over where they already are (a data file's tensors are mapped, not copied: the JVM and ORT then share the
 * page cache), and each float16 copy a candidate needs converted once — exactly as {@link Fp16Conversion} writes it,
 * clamps included — into one scratch file that is mapped back. Candidates differ only in which nodes stay float32, so
 * after the first round no weight is converted or written again.
 */
final class SessionWeights implements AutoCloseable {
  private final Set<Tensor> stable = java.util.Collections.newSetFromMap(new IdentityHashMap<>());
  private final Map<Tensor, ByteBuffer> direct = new IdentityHashMap<>();
  private final Map<Tensor, Tensor> halves = new IdentityHashMap<>();
  private final Path halfFile;
  private FileChannel halfChannel;
  private long halfEnd;
  private final Path floatFile;
  private FileChannel floatChannel;
  private long floatEnd;

  /** Whether the model's weights are large enough that its sets run one at a time (see {@link SetRuns}). */
  final boolean serial;

  /** @param model the float32 model the search's candidates are copies of (its tensors are cached for the search) */
  SessionWeights(Model model, Path scratch) {
    long bytes = 0;
    for (Value initializer : model.graph().initializers()) {
      stable.add(initializer.initializer());
      bytes += initializer.initializer().byteSize();
    }
    this.serial = bytes > SetRuns.SERIAL_ABOVE_BYTES;
    this.halfFile = scratch.resolve("float16-weights.data");
    this.floatFile = scratch.resolve("float32-weights.data");
  }

  /**
   * The tensor's bytes as a direct buffer (position 0, little-endian): a data file's range mapped; a weight the model
   * computes in memory (a fusion's packed weight, a CUDA layout's transposed filter) streamed once into a scratch
   * data file and mapped (page cache, not the heap or the process's anonymous memory: a full-size UNet for CUDA
   * computes 3.3 GB of them); a tensor made for one session only (by a lowering) copied for that session.
   */
  synchronized ByteBuffer direct(Tensor tensor) {
    Tensor original = tensor;
    ByteBuffer cached = direct.get(tensor);
    if (cached != null) {
      return cached.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    }
    if (stable.contains(tensor) && !(tensor instanceof ExternalTensor) && tensor.byteSize() <= ExternalTensor.MAX_MAP_BYTES) {
      try {
        if (floatChannel == null) {
          floatChannel = FileChannel.open(floatFile, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
        }
        long offset = (floatEnd + 63) / 64 * 64;
        floatChannel.position(offset);
        tensor.writeTo(floatChannel);
        floatEnd = offset + tensor.byteSize();
        if (floatChannel.position() != floatEnd) {
          throw new IOException("tensor ended at " + floatChannel.position() + ", expected " + floatEnd);
        }
        tensor = ExternalTensor.of(floatFile, offset, tensor.byteSize(), tensor.dataType(), tensor.dims());
      } catch (IOException e) {
        throw new UncheckedIOException("cannot write weights to " + floatFile + ": " + e.getMessage(), e);
      }
    }
    ByteBuffer bytes = tensor.bytes();
    if (!bytes.isDirect()) {
      ByteBuffer copy = ByteBuffer.allocateDirect(bytes.remaining()).order(ByteOrder.LITTLE_ENDIAN);
      copy.put(bytes.duplicate());
      bytes = copy.flip();
    }
    bytes = bytes.slice().order(ByteOrder.LITTLE_ENDIAN);
    if (stable.contains(original)) {
      direct.put(original, bytes);
    }
    return bytes.duplicate().order(ByteOrder.LITTLE_ENDIAN);
  }

  /**
   * Replaces, in a freshly converted candidate, each float16 initializer that {@link Fp16Conversion} made from a
   * float32 weight of the model (converted in place under its name, or copied beside it as {@code name_fp16}) by the
   * search's one converted copy of that weight.
   *
   * @param sources the candidate's float32 initializers by name, taken before the conversion
   */
  void shareHalves(Model candidate, Map<String, Tensor> sources) {
    for (Value initializer : candidate.graph().initializers()) {
      Tensor tensor = initializer.initializer();
      if (tensor.dataType() != DataType.FLOAT16 || sources.containsValue(tensor)) {
        continue;
      }
      Tensor source = sources.get(initializer.name());
      if (source == null && initializer.name().endsWith("_fp16")) {
        source = sources.get(initializer.name().substring(0, initializer.name().length() - "_fp16".length()));
      }
      if (source != null && stable.contains(source) && Arrays.equals(source.dims(), tensor.dims())) {
        initializer.setInitializer(half(source, initializer.name()));
      }
    }
  }

  /** The float16 copy of a float32 weight of the model, converted and written to the scratch file the first time. */
  private synchronized Tensor half(Tensor source, String name) {
    Tensor cached = halves.get(source);
    if (cached != null) {
      return cached;
    }
    try {
      if (halfChannel == null) {
        halfChannel = FileChannel.open(halfFile, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
      }
      long offset = (halfEnd + 63) / 64 * 64;
      halfChannel.position(offset);
      Tensor converted = HalfTensors.lazyHalf(source, name, new ClampCounts());
      converted.writeTo(halfChannel);
      halfEnd = offset + converted.byteSize();
      if (halfChannel.position() != halfEnd) {
        throw new IOException("float16 copy of " + name + " ended at " + halfChannel.position() + ", expected " + halfEnd);
      }
      Tensor mapped = ExternalTensor.of(halfFile, offset, converted.byteSize(), DataType.FLOAT16, source.dims());
      halves.put(source, mapped);
      stable.add(mapped);
      return mapped;
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write float16 weights to " + halfFile + ": " + e.getMessage(), e);
    }
  }

  @Override
  public synchronized void close() {
    direct.clear();
    halves.clear();
    for (FileChannel channel : new FileChannel[] {halfChannel, floatChannel}) {
      if (channel != null) {
        try {
          channel.close();
        } catch (IOException e) {
          // Only scratch space: the search deletes the folder.
        }
      }
    }
    for (Path file : List.of(halfFile, floatFile)) {
      try {
        Files.deleteIfExists(file);
      } catch (IOException e) {
        // As above.
      }
    }
  }
}
