package dev.kiln.validator.parity;

import dev.kiln.common.KilnException;
import dev.kiln.graph.DataType;
import dev.kiln.graph.Model;
import dev.kiln.graph.ModelReader;
import dev.kiln.graph.Node;
import dev.kiln.graph.Onnx;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import dev.kiln.validator.ComponentKind;
import dev.kiln.validator.Names;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;

/**
 * The inputs a component is judged on: seeded and realistic per input (token ids that start and end like a
 * prompt, unit-normal latents, timesteps across the schedule, SDXL time ids matching the size), or the ONNX
 * test data sets ({@code test_data_set_N/input_K.pb}) next to the model.
 */
public final class Feeds {
  private Feeds() {}

  /** Seeded inputs for {@code model} at the given input shapes. */
  public static Map<String, Input> seeded(Model model, ComponentKind kind, Map<String, Shape> shapes, long seed) {
    SplittableRandom random = new SplittableRandom(seed * 0x9E3779B97F4A7C15L + 17);
    Map<String, Input> inputs = new LinkedHashMap<>();
    long vocabulary = vocabulary(model);
    for (Value input : model.graph().inputs()) {
      if (input.isInitializer()) {
        continue;
      }
      Shape shape = shapes.get(input.name());
      if (shape == null || !shape.isFullyKnown()) {
        throw new KilnException.BadInput("input " + Names.quote(input.name()) + " has no concrete shape to feed");
      }
      long[] dims = shape.sizes();
      int count = Math.toIntExact(count(dims));
      DataType type = input.dataType();
      String name = input.name();
      if (type == DataType.INT32 || type == DataType.INT64) {
        long[] values = new long[count];
        if (name.equals("input_ids")) {
          tokenIds(values, dims, vocabulary, random);
        } else if (name.equals("timestep")) {
          for (int i = 0; i < count; i++) {
            values[i] = 1 + random.nextInt(999);
          }
        }
        inputs.put(name, type == DataType.INT64 ? new Input(dims, values) : new Input(dims, toInts(values)));
      } else if (type == DataType.FLOAT || type == DataType.FLOAT16) {
        float[] values = new float[count];
        if (name.equals("timestep")) {
          for (int i = 0; i < count; i++) {
            values[i] = 1 + random.nextInt(999);
          }
        } else if (name.equals("time_ids") && dims.length == 2 && dims[1] == 6) {
          timeIds(values, shapes, model, dims[0]);
        } else if (name.equals("controlnet_cond")) {
          // diffusers' ControlNet image processor: RGB in [0, 1], not normalized to [-1, 1].
          for (int i = 0; i < count; i++) {
            values[i] = (float) random.nextDouble();
          }
        } else if (name.equals("conditioning_scale")) {
          java.util.Arrays.fill(values, 1.0f);
        } else if (kind == ComponentKind.VAE_ENCODER) {
          for (int i = 0; i < count; i++) {
            values[i] = (float) (random.nextDouble() * 2 - 1);
          }
        } else {
          for (int i = 0; i < count; i++) {
            values[i] = (float) gaussian(random);
          }
        }
        inputs.put(name, new Input(dims, values));
      } else {
        throw new KilnException.Unsupported("input " + Names.quote(name) + " has type " + type + "; the validator feeds float and integer inputs");
      }
    }
    return inputs;
  }

  /** BOS, random ids, EOS, then EOS padding — the shape CLIP's pooled output (argmax of ids) expects. */
  private static void tokenIds(long[] values, long[] dims, long vocabulary, SplittableRandom random) {
    long sequence = dims.length == 2 ? dims[1] : values.length;
    long rows = values.length / Math.max(1, sequence);
    long begin = vocabulary - 2;
    long end = vocabulary - 1;
    for (int row = 0; row < rows; row++) {
      int length = 2 + random.nextInt((int) Math.max(1, Math.min(sequence - 1, 20)));
      for (int position = 0; position < sequence; position++) {
        long value;
        if (position == 0) {
          value = begin;
        } else if (position < length - 1 && position < sequence - 1) {
          value = random.nextLong(Math.max(1, vocabulary - 2));
        } else {
          value = end;
        }
        values[(int) (row * sequence + position)] = value;
      }
    }
  }

  private static void timeIds(float[] values, Map<String, Shape> shapes, Model model, long rows) {
    long height = 1024;
    long width = 1024;
    for (Map.Entry<String, Shape> entry : shapes.entrySet()) {
      if (entry.getKey().equals("sample") && entry.getValue().rank() == 4) {
        height = entry.getValue().sizes()[2] * 8;
        width = entry.getValue().sizes()[3] * 8;
      }
    }
    for (int row = 0; row < rows; row++) {
      float[] ids = {height, width, 0, 0, height, width};
      System.arraycopy(ids, 0, values, row * 6, 6);
    }
  }

  /** The token vocabulary: rows of the embedding table that input_ids index (through casts), or CLIP's 49408. */
  static long vocabulary(Model model) {
    for (Node node : model.graph().nodes()) {
      if (node.is(Onnx.GATHER) && node.inputCount() > 1 && node.input(0).initializer() != null
          && node.input(0).initializer().dims().length == 2 && readsInputIds(node.input(1), 4)) {
        return node.input(0).initializer().dims()[0];
      }
    }
    return 49408;
  }

  private static boolean readsInputIds(Value value, int hops) {
    if (value == null) {
      return false;
    }
    if (value.name().equals("input_ids") && value.isGraphInput()) {
      return true;
    }
    Node producer = value.producer();
    if (producer == null || hops == 0 || producer.inputCount() == 0) {
      return false;
    }
    return (producer.is(Onnx.CAST) || producer.is(Onnx.RESHAPE) || producer.is(Onnx.FLATTEN))
        && readsInputIds(producer.input(0), hops - 1);
  }

  /** The test data sets next to a model: for each, inputs by the model's input order and expected outputs. */
  public record TestData(String name, Map<String, Input> inputs, Map<String, float[]> outputs) {}

  public static List<TestData> testDataSets(Path modelFile, Model model) {
    Path folder = modelFile.toAbsolutePath().getParent();
    List<Path> sets = new ArrayList<>();
    try (Stream<Path> entries = Files.list(folder)) {
      entries.filter(path -> path.getFileName().toString().startsWith("test_data_set_") && Files.isDirectory(path))
          .sorted().forEach(sets::add);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    List<Value> inputs = new ArrayList<>();
    for (Value input : model.graph().inputs()) {
      if (!input.isInitializer()) {
        inputs.add(input);
      }
    }
    List<TestData> result = new ArrayList<>();
    for (Path set : sets) {
      Map<String, Input> feed = new LinkedHashMap<>();
      for (int index = 0; index < inputs.size(); index++) {
        Path file = set.resolve("input_" + index + ".pb");
        if (!Files.exists(file)) {
          throw new KilnException.BadInput(set + ": missing input_" + index + ".pb for input " + Names.quote(inputs.get(index).name()));
        }
        feed.put(inputs.get(index).name(), toInput(ModelReader.readTensor(file)));
      }
      Map<String, float[]> expected = new LinkedHashMap<>();
      List<Value> outputs = model.graph().outputs();
      for (int index = 0; index < outputs.size(); index++) {
        Path file = set.resolve("output_" + index + ".pb");
        if (Files.exists(file)) {
          expected.put(outputs.get(index).name(), ModelReader.readTensor(file).floats());
        }
      }
      result.add(new TestData(set.getFileName().toString(), feed, expected));
    }
    return result;
  }

  private static Input toInput(Tensor tensor) {
    long[] dims = tensor.dims();
    return switch (tensor.dataType()) {
      case INT64 -> new Input(dims, tensor.longs());
      case INT32 -> new Input(dims, toInts(tensor.longs()));
      default -> new Input(dims, tensor.floats());
    };
  }

  private static int[] toInts(long[] values) {
    int[] ints = new int[values.length];
    for (int i = 0; i < values.length; i++) {
      ints[i] = Math.toIntExact(values[i]);
    }
    return ints;
  }

  private static long count(long[] dims) {
    long count = 1;
    for (long dim : dims) {
      count = Math.multiplyExact(count, dim);
    }
    return count;
  }

  private static double gaussian(SplittableRandom random) {
    // Box-Muller from two uniforms: same sequence on every JVM.
    double u = 1 - random.nextDouble();
    double v = random.nextDouble();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
}
