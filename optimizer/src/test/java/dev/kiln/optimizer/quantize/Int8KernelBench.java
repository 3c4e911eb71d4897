package dev.kiln.optimizer.quantize;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import dev.kiln.graph.Attribute;
import dev.kiln.graph.DataType;
import dev.kiln.graph.Graph;
import dev.kiln.graph.Model;
import dev.kiln.graph.ModelWriter;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import dev.kiln.optimizer.precision.CalibrationSets;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;

/**
 * bench/int8-kernels.sh's harness (a main, not a test): which int8 kernels ORT's CPU provider runs fastest on this
 * machine. Two stacks at SD 1.5's first-level sizes — 4 convs 320→320 3×3 on 64×64 with ReLU, 6 MatMuls
 * [4096×320]·[320×320] — as float32 (the anchor), int8 with uint8 activations (u8s8), int8 with int8 activations
 * (s8s8) and weights-only int8; ORT at full optimization, 2 threads; interleaved rounds, each variant's median of
 * {@code runs}, best round kept (a shared machine's load only ever adds time).
 */
public final class Int8KernelBench {
  private Int8KernelBench() {}

  public static void main(String[] arguments) throws Exception {
    int rounds = arguments.length > 0 ? Integer.parseInt(arguments[0]) : 4;
    int runs = arguments.length > 1 ? Integer.parseInt(arguments[1]) : 11;
    Path folder = Files.createTempDirectory("kiln-int8-bench-");
    System.out.println("| stack | variant | ORT int8 kernels | median ms | vs fp32 |");
    System.out.println("|---|---|---|---|---|");
    for (String stack : List.of("conv", "matmul")) {
      long[] shape = stack.equals("conv") ? new long[] {1, 320, 64, 64} : new long[] {1, 4096, 320};
      Map<String, Path> files = new LinkedHashMap<>();
      Map<String, String> kernels = new LinkedHashMap<>();
      files.put("fp32", write(build(stack), folder.resolve(stack + "-fp32.onnx")));
      kernels.put("fp32", "-");
      for (String variant : List.of("u8s8", "s8s8", "weights-only")) {
        Model model = build(stack);
        Int8Options options = Int8Options.DEFAULT.withKeepDefaults(false).withSignedActivations(variant.equals("s8s8"))
            .withScheme(variant.equals("weights-only") ? Int8Options.Scheme.WEIGHTS : Int8Options.Scheme.FULL);
        Int8Report report = Int8Quantization.quantize(model, sets(model), "bench", options);
        kernels.put(variant, report.ortKernels().toString().replace("com.microsoft:", ""));
        files.put(variant, write(model, folder.resolve(stack + "-" + variant + ".onnx")));
      }
      Map<String, Double> best = new LinkedHashMap<>();
      for (int round = 0; round < rounds; round++) {
        for (Map.Entry<String, Path> file : files.entrySet()) {
          best.merge(file.getKey(), median(file.getValue(), shape, runs), Math::min);
        }
      }
      double anchor = best.get("fp32");
      best.forEach((variant, millis) -> System.out.println(String.format(Locale.ROOT, "| %s | %s | %s | %.1f | %.2fx |",
          stack, variant, kernels.get(variant), millis, millis / anchor)));
    }
  }

  private static Model build(String stack) {
    return stack.equals("conv") ? convs() : matMuls();
  }

  private static Path write(Model model, Path file) {
    ModelWriter.write(model, file);
    return file;
  }

  private static Model convs() {
    Random random = new Random(1);
    Graph graph = new Graph("convs");
    Value current = graph.addInput("x", DataType.FLOAT, Shape.of(1, 320, 64, 64));
    for (int layer = 0; layer < 4; layer++) {
      Value weight = graph.addInitializer("w" + layer, Tensor.ofFloats(new long[] {320, 320, 3, 3},
          SmallGraphs.gaussian(random, 320 * 320 * 9, (float) Math.sqrt(2.0 / (320 * 9)))));
      Value bias = graph.addInitializer("b" + layer, Tensor.ofFloats(new long[] {320}, SmallGraphs.gaussian(random, 320, 0.01f)));
      Node conv = Node.create(Onnx.CONV, "/block" + layer + "/conv/Conv", List.of(current, weight, bias), "conv" + layer);
      conv.setAttribute(Attribute.ofInts("pads", 1, 1, 1, 1));
      graph.append(conv);
      Node relu = Node.create(Onnx.RELU, "/block" + layer + "/Relu", List.of(conv.output()), "relu" + layer);
      graph.append(relu);
      current = relu.output();
    }
    current.setType(DataType.FLOAT, Shape.of(1, 320, 64, 64));
    graph.addOutput(current);
    return model(graph);
  }

  private static Model matMuls() {
    Random random = new Random(2);
    Graph graph = new Graph("matmuls");
    Value current = graph.addInput("x", DataType.FLOAT, Shape.of(1, 4096, 320));
    for (int layer = 0; layer < 6; layer++) {
      Value weight = graph.addInitializer("w" + layer, Tensor.ofFloats(new long[] {320, 320},
          SmallGraphs.gaussian(random, 320 * 320, (float) Math.sqrt(1.0 / 320))));
      Node matMul = Node.create(Onnx.MAT_MUL, "/layer" + layer + "/proj/MatMul", List.of(current, weight), "proj" + layer);
      graph.append(matMul);
      current = matMul.output();
    }
    current.setType(DataType.FLOAT, Shape.of(1, 4096, 320));
    graph.addOutput(current);
    return model(graph);
  }

  private static Model model(Graph graph) {
    Model model = new Model(8, graph);
    model.opsetImports().put("", 17L);
    return model;
  }

  private static List<CalibrationSets.Set> sets(Model model) {
    return SmallGraphs.sets(model, 2, 3);
  }

  private static double median(Path model, long[] shape, int runs) throws Exception {
    OrtEnvironment environment = OrtEnvironment.getEnvironment();
    try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
      options.setIntraOpNumThreads(2);
      options.setInterOpNumThreads(1);
      options.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.ALL_OPT);
      try (OrtSession session = environment.createSession(model.toString(), options)) {
        int elements = Math.toIntExact(Arrays.stream(shape).reduce(1, Math::multiplyExact));
        float[] values = SmallGraphs.gaussian(new Random(5), elements, 1f);
        try (OnnxTensor input = OnnxTensor.createTensor(environment, FloatBuffer.wrap(values), shape)) {
          for (int warm = 0; warm < 2; warm++) {
            session.run(Map.of("x", input)).close();
          }
          List<Double> millis = new ArrayList<>();
          for (int run = 0; run < runs; run++) {
            long start = System.nanoTime();
            session.run(Map.of("x", input)).close();
            millis.add((System.nanoTime() - start) / 1e6);
          }
          millis.sort(null);
          return millis.get(runs / 2);
        }
      }
    }
  }
}
