package dev.kiln.optimizer.precision;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.kiln.graph.DataType;
import dev.kiln.graph.ExternalTensor;
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
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The streamed fp16 conversion writes exactly the bytes the first (two-pass, per-element) implementation wrote: the
 * digests below were taken from that implementation on this fixture before the conversion was rewritten. The
 * fixture covers every class of float32 bit pattern: the edges of float16's range and of the clamp, ties, NaN
 * payloads, infinities, signed zeros, float32 subnormals, uniformly random bit patterns and weight-like values; one
 * weight large enough to stay external after halving, one small enough to come back inline, one read by both a
 * float16 and a float32 node (a float16 copy beside it).
 */
class Fp16StreamingGoldenTest {
  private static final String MODEL_SHA256 = "c297aec8e2a3b6b24b92d17c5f12bcbdc83092b01e5d2552b3bb2168de981e5b";
  private static final String DATA_SHA256 = "e6db68ae2b0e6b7845d4e52a3a7450923ac2cddface5a96d0889d7dd1e4017b8";
  /**
   * The first implementation's counts; it counted NaNs as clamped too (its test was {@code clamp(x) != x}, true for
   * NaN), which they are not: the test subtracts them.
   */
  private static final Map<String, Long> CLAMPED_WITH_NAN = Map.of("big", 442339L, "small", 834L, "shared", 442293L);

  @TempDir Path folder;

  /** Float bit patterns a converter gets wrong first, then seeded random bits and weight-like values. */
  static float[] fixtureValues(int count) {
    float[] values = new float[count];
    int index = 0;
    int[] edges = {
      0x00000000, 0x80000000, 0x00000001, 0x807fffff, 0x00800000, // zeros, float32 subnormals, smallest normal
      0x33000000, 0x33000001, 0x337fffff, 0x33800000, 0x33800001, // 2^-25 (half of the smallest half) and around it
      Float.floatToRawIntBits(5.96e-8f) - 1, Float.floatToRawIntBits(5.96e-8f), Float.floatToRawIntBits(5.96e-8f) + 1,
      0x387fc000, 0x387fe000, 0x387fefff, 0x387ff000, 0x38800000, // around the largest subnormal and smallest normal half
      0x3f801000, 0x3f803000, 0x3f801001, 0x3f802fff, // ties to even at 1.0
      0x477fe000, 0x477fe001, 0x477fefff, 0x477ff000, 0x477fffff, 0x47800000, // 65504, the tie at 65520, 65536
      0x7f7fffff, 0x7f800000, 0xff800000, 0x7fc00000, 0x7f800001, 0xffc12345, 0x7fbfe000, 0x7fa02000, // max, inf, NaNs
    };
    for (int edge : edges) {
      values[index++] = Float.intBitsToFloat(edge);
      values[index++] = Float.intBitsToFloat(edge ^ 0x80000000);
    }
    Random random = new Random(20261207L);
    while (index < count / 2) {
      values[index++] = Float.intBitsToFloat(random.nextInt());
    }
    while (index < count) {
      values[index++] = (float) (random.nextGaussian() * 0.05);
    }
    return values;
  }

  /** x[1,n] → Mul(big) → Add(small) → Relu → y, and Sub(x, shared) float32 → Add(shared) float16 → z. */
  private static Model fixture(int big, int small) {
    Graph graph = new Graph("golden");
    Value x = graph.addInput("x", DataType.FLOAT, Shape.of(1, big));
    float[] values = fixtureValues(big);
    Value bigWeight = graph.addInitializer("big", Tensor.ofFloats(new long[] {1, big}, values));
    Value smallWeight = graph.addInitializer("small", Tensor.ofFloats(new long[] {1, small}, java.util.Arrays.copyOf(values, small)));
    float[] sharedValues = new float[big];
    for (int i = 0; i < big; i++) {
      sharedValues[i] = values[(int) ((i * 31L) % big)] * 3;
    }
    Value shared = graph.addInitializer("shared", Tensor.ofFloats(new long[] {1, big}, sharedValues));
    Node mul = Node.create(Onnx.MUL, "/mul", List.of(x, bigWeight), "m");
    graph.append(mul);
    Node relu = Node.create(Onnx.RELU, "/relu", List.of(mul.output()), "r");
    graph.append(relu);
    Node add = Node.create(Onnx.ADD, "/add", List.of(relu.output(), shared), "y");
    graph.append(add);
    add.output().setType(DataType.FLOAT, Shape.of(1, big));
    graph.addOutput(add.output());
    Node sub = Node.create(Onnx.SUB, "/sub", List.of(x, shared), "s");
    graph.append(sub);
    Node addSmall = Node.create(Onnx.ADD, "/add_small", List.of(sub.output(), smallWeight), "z");
    graph.append(addSmall);
    addSmall.output().setType(DataType.FLOAT, Shape.of(1, big));
    graph.addOutput(addSmall.output());
    Model model = new Model(8, graph);
    model.opsetImports().put("", 17L);
    return model;
  }

  @Test
  void conversionsWrittenConcurrentlyShareTheWriterThreadAndStillWriteTheGoldenBytes() throws Exception {
    Path source = folder.resolve("source.onnx");
    ModelWriter.write(fixture(1 << 20, 1000), source, WriteOptions.externalAbove(1024).withDataFileName("source.data"));
    Fp16Conversion.Options blockSub = new Fp16Conversion.Options(true, java.util.Set.of(), java.util.Set.of("/sub"));
    java.util.List<java.util.concurrent.Future<String>> digests = new java.util.ArrayList<>();
    java.util.concurrent.ExecutorService threads = java.util.concurrent.Executors.newFixedThreadPool(3);
    try {
      for (int i = 0; i < 3; i++) {
        Path target = folder.resolve("half" + i).resolve("model.onnx");
        digests.add(threads.submit(() -> {
          Model read = ModelReader.read(source);
          Fp16Conversion.convert(read, Map.of(), blockSub);
          ModelWriter.write(read, target);
          return sha256(target) + " " + sha256(target.resolveSibling("model.onnx.data"));
        }));
      }
      for (java.util.concurrent.Future<String> digest : digests) {
        assertEquals(MODEL_SHA256 + " " + DATA_SHA256, digest.get());
      }
    } finally {
      threads.shutdownNow();
    }
  }

  static String sha256(Path file) throws Exception {
    MessageDigest digest = MessageDigest.getInstance("SHA-256");
    digest.update(Files.readAllBytes(file));
    return HexFormat.of().formatHex(digest.digest());
  }

  @Test
  void streamedConversionWritesTheGoldenBytes() throws Exception {
    Path source = folder.resolve("source.onnx");
    ModelWriter.write(fixture(1 << 20, 1000), source, WriteOptions.externalAbove(1024).withDataFileName("source.data"));
    Model read = ModelReader.read(source);
    assertTrue(read.graph().findValue("big").initializer() instanceof ExternalTensor);
    Fp16Conversion.Options blockSub = new Fp16Conversion.Options(true, java.util.Set.of(), java.util.Set.of("/sub"));
    PrecisionReport report = Fp16Conversion.convert(read, Map.of(), blockSub);
    Path target = folder.resolve("half").resolve("model.onnx");
    assertEquals(3, ((ClampCounts) report.clampedValues()).uncounted());
    ModelWriter.write(read, target);
    // Writing converted every weight once and counted its clamps on the way: the report needs no pass of its own.
    assertEquals(0, ((ClampCounts) report.clampedValues()).uncounted());
    assertEquals(MODEL_SHA256, sha256(target));
    assertEquals(DATA_SHA256, sha256(target.resolveSibling("model.onnx.data")));
    float[] values = fixtureValues(1 << 20);
    long nans = java.util.stream.IntStream.range(0, values.length).filter(i -> Float.isNaN(values[i])).count();
    long smallNans = java.util.stream.IntStream.range(0, 1000).filter(i -> Float.isNaN(values[i])).count();
    assertEquals(Map.of("big", CLAMPED_WITH_NAN.get("big") - nans, "small", CLAMPED_WITH_NAN.get("small") - smallNans,
        "shared", CLAMPED_WITH_NAN.get("shared") - nans), report.clampedValues());
    assertEquals(440287L, report.clampedValues().get("big"));
  }
}
