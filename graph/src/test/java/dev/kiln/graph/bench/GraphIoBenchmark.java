package dev.kiln.graph.bench;

import dev.kiln.graph.DataType;
import dev.kiln.graph.Graph;
import dev.kiln.graph.Model;
import dev.kiln.graph.ModelReader;
import dev.kiln.graph.ModelWriter;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import dev.kiln.graph.WriteOptions;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * The two halves of bench/graph-io.sh, run in separate JVMs so each one's peak RSS is its own:
 * {@code generate DIR GIB} writes a model with GIB GiB of non-zero external weights; {@code roundtrip SRC DST}
 * reads a model and writes it back (the measured operation) and prints its own peak RSS from /proc.
 */
public final class GraphIoBenchmark {
  private static final int TENSOR_ELEMENTS = 16 << 20; // 64 MiB of FLOAT per tensor, like a large UNet weight

  private GraphIoBenchmark() {}

  public static void main(String[] arguments) throws Exception {
    switch (arguments[0]) {
      case "generate" -> generate(Path.of(arguments[1]), Double.parseDouble(arguments[2]));
      case "roundtrip" -> roundTrip(Path.of(arguments[1]), Path.of(arguments[2]));
      default -> throw new IllegalArgumentException("usage: generate DIR GIB | roundtrip SOURCE.onnx TARGET.onnx");
    }
  }

  private static void generate(Path folder, double gibibytes) {
    int tensors = (int) Math.ceil(gibibytes * (1L << 30) / (TENSOR_ELEMENTS * 4L));
    Graph graph = new Graph("bench");
    Value current = graph.addInput("x", DataType.FLOAT, Shape.of(TENSOR_ELEMENTS));
    for (int i = 0; i < tensors; i++) {
      int seed = i;
      // Produced only while the writer streams it: the generator's heap holds one tensor at a time.
      Value weight = graph.addInitializer("weight_" + i, Tensor.computed(DataType.FLOAT, new long[] {TENSOR_ELEMENTS}, () -> pattern(seed)));
      Node add = Node.create(Onnx.ADD, "add_" + i, List.of(current, weight), "sum_" + i);
      graph.append(add);
      current = add.output();
    }
    graph.addOutput(current);
    Model model = new Model(8, graph);
    model.opsetImports().put("", 17L);
    model.setProducer("kiln-bench", "1");
    ModelWriter.write(model, folder.resolve("model.onnx"), WriteOptions.externalAbove(1024));
  }

  private static ByteBuffer pattern(int seed) {
    ByteBuffer bytes = ByteBuffer.allocate(TENSOR_ELEMENTS * 4).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < TENSOR_ELEMENTS; i++) {
      bytes.putFloat(((i * 31 + seed * 7919) % 4093) * 1e-3f - 2f);
    }
    bytes.flip();
    return bytes;
  }

  private static void roundTrip(Path source, Path target) throws Exception {
    long start = System.nanoTime();
    Model model = ModelReader.read(source);
    ModelWriter.write(model, target, WriteOptions.externalAbove(1024));
    System.out.printf(java.util.Locale.ROOT, "inProcessSeconds=%.2f%n", (System.nanoTime() - start) / 1e9);
    System.out.println("peakRssKiB=" + peakRssKib());
    System.out.println("heapUsedBytes=" + (Runtime.getRuntime().totalMemory() - Runtime.getRuntime().freeMemory()));
  }

  /** VmHWM: the high-water mark of this process's resident set, as the kernel counts it. */
  private static long peakRssKib() throws Exception {
    for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
      if (line.startsWith("VmHWM:")) {
        return Long.parseLong(line.replaceAll("[^0-9]", ""));
      }
    }
    return -1;
  }
}
