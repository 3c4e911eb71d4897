package dev.kiln.graph;

import dev.kiln.graph.proto.OnnxProto.GraphProto;
import dev.kiln.graph.proto.OnnxProto.ModelProto;
import dev.kiln.graph.proto.OnnxProto.TensorProto;
import java.io.RandomAccessFile;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Child-JVM half of {@link LargeExternalDataTest}: run with a small heap, it reads a model whose external
 * data is larger than 2 GiB (one tensor alone is), writes it back, re-reads the copy and checks marker bytes
 * placed at the start, across each 1 GiB map boundary and at the end. Prints {@code peakHeapBytes=N}.
 */
public final class LargeExternalDataChild {
  static final long HUGE_ELEMENTS = 600_000_000L; // 2.4e9 bytes of FLOAT: past 2 GiB on its own
  static final int TAIL_ELEMENTS = 1024;

  private LargeExternalDataChild() {}

  public static void main(String[] arguments) throws Exception {
    Path folder = Path.of(arguments[0]);
    Path source = Files.createDirectories(folder.resolve("source"));
    long hugeBytes = HUGE_ELEMENTS * 4;
    long tailOffset = (hugeBytes + 4095) / 4096 * 4096;
    long[] markerPositions = {0, (1L << 30) - 8, 1L << 30, (2L << 30) - 8, 2L << 30, hugeBytes - 16};
    try (RandomAccessFile data = new RandomAccessFile(source.resolve("weights.bin").toFile(), "rw")) {
      data.setLength(tailOffset + TAIL_ELEMENTS * 4L); // sparse: only the markers and the tail take disk space
      for (long position : markerPositions) {
        data.seek(position);
        data.write(marker(position));
      }
      data.seek(tailOffset);
      data.write(tailBytes());
    }
    TensorProto huge = Protos.externalTensor("huge", new long[] {HUGE_ELEMENTS}, "location", "weights.bin", "offset", "0", "length",
        Long.toString(hugeBytes));
    TensorProto tail = Protos.externalTensor("tail", new long[] {TAIL_ELEMENTS}, "location", "weights.bin", "offset",
        Long.toString(tailOffset), "length", Long.toString(TAIL_ELEMENTS * 4L));
    ModelProto proto = Protos.model(GraphProto.newBuilder()
        .setName("large")
        .addInput(Protos.floatInfo("x", TAIL_ELEMENTS))
        .addInitializer(huge)
        .addInitializer(tail)
        .addNode(Protos.node("Add", List.of("x", "tail"), List.of("y")))
        .addNode(Protos.node("ReduceSum", List.of("huge"), List.of("total")))
        .addOutput(Protos.floatInfo("y", TAIL_ELEMENTS))
        .addOutput(Protos.floatInfo("total"))
        .build());
    Path sourceModel = Protos.write(source.resolve("model.onnx"), proto);

    Model model = ModelReader.read(sourceModel);
    Path copy = folder.resolve("copy/model.onnx");
    ModelWriter.write(model, copy, WriteOptions.externalAbove(1024));

    Model back = ModelReader.read(copy);
    ExternalTensor hugeCopy = (ExternalTensor) back.graph().findValue("huge").initializer();
    ExternalTensor tailCopy = (ExternalTensor) back.graph().findValue("tail").initializer();
    check(hugeCopy.length() == hugeBytes, "huge length " + hugeCopy.length());
    check(tailCopy.offset() % 4096 == 0 && tailCopy.offset() >= hugeBytes, "tail offset " + tailCopy.offset());
    check(Files.size(copy.resolveSibling("model.onnx.data")) == tailCopy.offset() + TAIL_ELEMENTS * 4L, "data file size");
    List<ByteBuffer> chunks = hugeCopy.chunks();
    check(chunks.size() == 3, "a 2.4 GB tensor spans three 1 GiB maps, got " + chunks.size());
    for (long position : markerPositions) {
      byte[] expected = marker(position);
      for (int i = 0; i < expected.length; i++) {
        long at = position + i;
        byte actual = chunks.get((int) (at / ExternalTensor.MAX_MAP_BYTES)).get((int) (at % ExternalTensor.MAX_MAP_BYTES));
        check(actual == expected[i], "marker byte at " + at);
      }
    }
    check(java.util.Arrays.equals(tailCopy.floats(), tailFloats()), "tail values");
    try {
      hugeCopy.bytes();
      check(false, "bytes() of a tensor larger than one map must refuse");
    } catch (IllegalStateException expected) {
      // Streams and chunks are the way to handle such a tensor.
    }
    long peak = 0;
    for (MemoryPoolMXBean pool : ManagementFactory.getMemoryPoolMXBeans()) {
      if (pool.getType() == MemoryType.HEAP) {
        peak += pool.getPeakUsage().getUsed();
      }
    }
    System.out.println("dataBytes=" + (tailOffset + TAIL_ELEMENTS * 4L));
    System.out.println("peakHeapBytes=" + peak);
  }

  static byte[] marker(long position) {
    byte[] marker = new byte[8];
    for (int i = 0; i < 8; i++) {
      marker[i] = (byte) ((position >>> (i * 5)) + 17 * i + 1);
    }
    return marker;
  }

  static float[] tailFloats() {
    float[] values = new float[TAIL_ELEMENTS];
    for (int i = 0; i < values.length; i++) {
      values[i] = i - 511.5f;
    }
    return values;
  }

  static byte[] tailBytes() {
    ByteBuffer bytes = ByteBuffer.allocate(TAIL_ELEMENTS * 4).order(ByteOrder.LITTLE_ENDIAN);
    for (float value : tailFloats()) {
      bytes.putFloat(value);
    }
    return bytes.array();
  }

  private static void check(boolean condition, String what) {
    if (!condition) {
      throw new AssertionError("check failed: " + what);
    }
  }
}
