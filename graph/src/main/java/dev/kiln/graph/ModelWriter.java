package dev.kiln.graph;

import dev.kiln.common.AtomicFiles;
import dev.kiln.common.PhaseTimes;
import dev.kiln.common.StagedFile;
import dev.kiln.graph.proto.OnnxProto.ModelProto;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Pattern;
import java.util.zip.CRC32;
import java.util.zip.CRC32C;

/**
 * Writes a model as a .onnx file plus, when any tensor goes external, one data file next to it. Both are
 * written to temporary files in the target folder and renamed into place (data file first, so a model
 * never points at a missing file). The same model and options always give the same bytes.
 */
public final class ModelWriter {
  private ModelWriter() {}

  public static void write(Model model, Path target) {
    write(model, target, WriteOptions.defaults());
  }

  public static void write(Model model, Path target, WriteOptions options) {
    Path absolute = target.toAbsolutePath();
    Path folder = absolute.getParent();
    String dataFileName = options.dataFileName() != null ? options.dataFileName() : absolute.getFileName() + ".data";
    Path dataFile = folder.resolve(dataFileName);

    ProtoEncoder encoder = new ProtoEncoder(options, dataFileName);
    ModelProto proto = encoder.encodeModel(model);
    // Both files are finished under temporary names before either is renamed, so a failure part-way (a full
    // disk, an unreadable source) leaves the previous model and data file untouched as a pair.
    Path dataTemporary = null;
    Path modelTemporary = null;
    try {
      Files.createDirectories(folder);
      if (!encoder.placements().isEmpty()) {
        dataTemporary = Files.createTempFile(folder, "." + dataFileName + ".", ".partial");
        writeDataFile(dataTemporary, encoder);
      }
      modelTemporary = Files.createTempFile(folder, "." + absolute.getFileName() + ".", ".partial");
      try (OutputStream out = new BufferedOutputStream(Files.newOutputStream(modelTemporary), 1 << 20)) {
        proto.writeTo(out);
      }
      if (dataTemporary != null) {
        AtomicFiles.commit(dataTemporary, dataFile);
        dataTemporary = null;
      }
      AtomicFiles.commit(modelTemporary, absolute);
      modelTemporary = null;
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + absolute + ": " + e.getMessage(), e);
    } finally {
      AtomicFiles.deleteQuietly(dataTemporary);
      AtomicFiles.deleteQuietly(modelTemporary);
    }
    repointOverwrittenSources(dataFile, encoder);
  }

  /**
   * Writes a model as a file output that replaces an earlier one atomically: the data file is named after its
   * content ({@code <model file name>.<16 hex digits>.data}), so it never takes the name the current graph points
   * at, and the graph's one rename at {@link StagedFile#commit()} publishes graph and data together. The same
   * model gives the same bytes and names. The data file name in {@code options} is ignored; the caller commits.
   */
  public static void write(Model model, StagedFile output, WriteOptions options) {
    String modelName = output.target().getFileName().toString();
    ProtoEncoder layout = new ProtoEncoder(options, modelName + ".data");
    layout.encodeModel(model);
    String dataFileName = modelName + ".data";
    try {
      if (!layout.placements().isEmpty()) {
        Path data = output.newCompanion();
        writeDataFile(data, layout);
        PhaseTimes.mark("write data file");
        dataFileName = modelName + "." + digest(data) + ".data";
        PhaseTimes.mark("digest data file");
        output.commitCompanionAs(data, dataFileName);
      }
      ModelProto proto = new ProtoEncoder(options, dataFileName).encodeModel(model);
      try (OutputStream out = new BufferedOutputStream(Files.newOutputStream(output.path()), 1 << 20)) {
        proto.writeTo(out);
      }
      PhaseTimes.mark("write graph");
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + output.target() + ": " + e.getMessage(), e);
    }
    Pattern versioned = Pattern.compile(Pattern.quote(modelName) + "\\.[0-9a-f]{16}\\.data");
    output.replacesCompanions(name -> versioned.matcher(name).matches());
  }

  /** CRC32C and CRC32 of a file as 16 hex digits: names a data file by its bytes at memory speed. */
  private static String digest(Path file) throws IOException {
    CRC32C castagnoli = new CRC32C();
    CRC32 ieee = new CRC32();
    ByteBuffer buffer = ByteBuffer.allocateDirect(1 << 20);
    try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
      while (channel.read(buffer.clear()) > 0) {
        buffer.flip();
        castagnoli.update(buffer.duplicate());
        ieee.update(buffer);
      }
    }
    return String.format(Locale.ROOT, "%08x%08x", castagnoli.getValue(), ieee.getValue());
  }

  /** Serializes a model to bytes (inline tensors only; external ones must already sit in a file). */
  public static byte[] toBytes(Model model) {
    ProtoEncoder encoder = new ProtoEncoder(WriteOptions.allInline(), "unused.data");
    return encoder.encodeModel(model).toByteArray();
  }

  /**
   * A single tensor as a serialized TensorProto with its data inline (the format of ONNX test-case .pb files).
   * A tensor read from such a file comes back byte-identical.
   */
  public static byte[] tensorBytes(Tensor tensor, String name) {
    ProtoEncoder encoder = new ProtoEncoder(WriteOptions.allInline(), "unused.data");
    return encoder.encodeStandaloneTensor(tensor, name).toByteArray();
  }

  /**
   * Threads that write a data file's tensors: a computed tensor (an fp16 conversion, an OHWI transpose) costs CPU
   * per byte, so tensors are written side by side, each at its own offset. The bytes do not depend on the count.
   * {@code kiln.writeThreads} overrides it (1 writes in order on the calling thread).
   */
  static int writeThreads() {
    return Math.max(1, Integer.getInteger("kiln.writeThreads", Math.min(4, Runtime.getRuntime().availableProcessors())));
  }

  private static void writeDataFile(Path temporary, ProtoEncoder encoder) throws IOException {
    writeDataFile(temporary, encoder.placements(), writeThreads());
  }

  /**
   * One piece of the data file: placements {@code first} to {@code end} (exclusive) with the zero padding before
   * them, from {@code start}; more than one placement only for a run of external tensors that sit back to back in
   * one source file and stay back to back here, copied by one kernel transfer (far fewer round trips than a
   * transfer per, often 64 MiB, tensor).
   */
  private record Piece(long start, int first, int end) {}

  /**
   * Writes the data file from {@code placements} with {@code threads} writers: each takes the next piece, positions
   * its own channel on the file at the piece's offset and writes its padding and tensors there, so the file holds
   * exactly the bytes a single writer going in order gives. The largest pieces go first so the threads finish
   * together. Package-private for the test that compares thread counts.
   */
  static void writeDataFile(Path temporary, List<ProtoEncoder.Placement> placements, int threads) throws IOException {
    List<Piece> pieces = new ArrayList<>();
    long position = 0;
    int index = 0;
    while (index < placements.size()) {
      ProtoEncoder.Placement placement = placements.get(index);
      int end = index + 1;
      long pieceEnd = placement.offset() + placement.tensor().byteSize();
      if (placement.tensor() instanceof ExternalTensor first) {
        long sourceEnd = first.offset() + first.length();
        while (end < placements.size() && placements.get(end).tensor() instanceof ExternalTensor next && next.file().equals(first.file())
            && next.offset() == sourceEnd && placements.get(end).offset() == pieceEnd) {
          sourceEnd += next.length();
          pieceEnd += next.length();
          end++;
        }
      }
      pieces.add(new Piece(position, index, end));
      position = pieceEnd;
      index = end;
    }
    try (FileChannel channel = FileChannel.open(temporary, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
      if (threads <= 1 || pieces.size() <= 1) {
        for (Piece piece : pieces) {
          writePiece(channel, piece, placements);
        }
        return;
      }
    }
    List<Piece> largestFirst = new ArrayList<>(pieces);
    largestFirst.sort(Comparator.comparingLong((Piece piece) -> pieceEnd(piece, placements) - piece.start()).reversed());
    AtomicInteger next = new AtomicInteger();
    AtomicBoolean failed = new AtomicBoolean();
    Callable<Void> writer = () -> {
      try (FileChannel channel = FileChannel.open(temporary, StandardOpenOption.WRITE)) {
        for (int taken = next.getAndIncrement(); taken < largestFirst.size() && !failed.get(); taken = next.getAndIncrement()) {
          writePiece(channel, largestFirst.get(taken), placements);
        }
      } catch (IOException | RuntimeException | Error e) {
        failed.set(true);
        throw e;
      }
      return null;
    };
    int helpers = Math.min(threads, pieces.size()) - 1;
    ExecutorService pool = Executors.newFixedThreadPool(helpers, task -> {
      Thread thread = new Thread(task, "kiln-data-writer");
      thread.setDaemon(true);
      return thread;
    });
    try {
      List<Future<Void>> running = new ArrayList<>();
      for (int i = 0; i < helpers; i++) {
        running.add(pool.submit(writer));
      }
      Throwable first = null;
      try {
        writer.call();
      } catch (Exception | Error e) {
        first = e;
      }
      for (Future<Void> each : running) {
        try {
          each.get();
        } catch (ExecutionException e) {
          first = first != null ? first : e.getCause();
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          failed.set(true);
          first = first != null ? first : new java.io.InterruptedIOException("interrupted while writing " + temporary);
        }
      }
      if (first instanceof IOException io) {
        throw io;
      } else if (first instanceof RuntimeException runtime) {
        throw runtime;
      } else if (first instanceof Error error) {
        throw error;
      } else if (first != null) {
        throw new IOException("cannot write " + temporary + ": " + first, first);
      }
    } finally {
      pool.shutdownNow();
    }
  }

  private static long pieceEnd(Piece piece, List<ProtoEncoder.Placement> placements) {
    ProtoEncoder.Placement last = placements.get(piece.end() - 1);
    return last.offset() + last.tensor().byteSize();
  }

  /** Writes one piece at its offset: zeros for the padding before it, then its tensors. */
  private static void writePiece(FileChannel channel, Piece piece, List<ProtoEncoder.Placement> placements) throws IOException {
    ProtoEncoder.Placement placement = placements.get(piece.first());
    channel.position(piece.start());
    if (placement.offset() > piece.start()) {
      // Alignment padding is written as zeros (not left as a hole) so the bytes are the same everywhere.
      writeZeros(channel, placement.offset() - piece.start());
    }
    long end = pieceEnd(piece, placements);
    if (placement.tensor() instanceof ExternalTensor first) {
      transfer(first.file(), first.offset(), end - placement.offset(), channel);
    } else {
      placement.tensor().writeTo(channel);
    }
    if (channel.position() != end) {
      throw new IOException("tensor data ended at " + channel.position() + ", expected " + end);
    }
  }

  private static void transfer(Path source, long offset, long length, FileChannel target) throws IOException {
    try (FileChannel input = FileChannel.open(source, StandardOpenOption.READ)) {
      long done = 0;
      while (done < length) {
        long moved = input.transferTo(offset + done, length - done, target);
        if (moved <= 0) {
          throw new IOException("data file " + source + " ended after " + (offset + done) + " bytes; expected " + (offset + length));
        }
        done += moved;
      }
    }
  }

  private static void writeZeros(FileChannel channel, long count) throws IOException {
    ByteBuffer zeros = ByteBuffer.allocate((int) Math.min(count, 1 << 16));
    long left = count;
    while (left > 0) {
      zeros.clear().limit((int) Math.min(left, zeros.capacity()));
      while (zeros.hasRemaining()) {
        left -= channel.write(zeros);
      }
    }
  }

  /**
   * Writing over the data file the model was read from replaced that file: tensors that pointed into it
   * now point into the new file (same bytes, new offsets), so the in-memory model stays readable.
   */
  private static void repointOverwrittenSources(Path dataFile, ProtoEncoder encoder) {
    Path written;
    try {
      written = dataFile.toRealPath();
    } catch (IOException e) {
      return;
    }
    for (ProtoEncoder.Placement placement : encoder.placements()) {
      if (placement.tensor() instanceof ExternalTensor source && source.file().equals(written)) {
        placement.repoint().accept(new ExternalTensor(written, placement.offset(), source.length(), source.dataType(), source.dims(),
            source.original()));
      }
    }
  }
}
