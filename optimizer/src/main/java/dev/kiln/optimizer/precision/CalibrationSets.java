package dev.kiln.optimizer.precision;

import dev.kiln.common.KilnException;
import dev.kiln.common.Printable;
import dev.kiln.graph.Model;
import dev.kiln.graph.ModelReader;
import dev.kiln.graph.Shape;
import dev.kiln.graph.Tensor;
import dev.kiln.graph.Value;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * Calibration inputs in the ONNX test-data layout ({@code test_data_set_N/input_K.pb}, input K feeding the model's
 * K-th graph input). A tensor that names itself must name that input, and its shape must fit the declared one:
 * anything else is refused naming the input and the shape it expected.
 */
public final class CalibrationSets {
  private CalibrationSets() {}

  /** One set: feeds by input name (float[], long[] or int[] values). */
  public record Set(String name, Map<String, Feed> feeds) {}

  public record Feed(long[] shape, Object values) {}

  public static List<Set> read(Path folder, Model model) {
    List<Path> sets = new ArrayList<>();
    if (Files.isDirectory(folder)) {
      try (Stream<Path> entries = Files.list(folder)) {
        // By number: test_data_set_10 comes after test_data_set_9 (the even/odd split of mixed precision relies on it).
        entries.filter(path -> path.getFileName().toString().startsWith("test_data_set_") && Files.isDirectory(path))
            .sorted(java.util.Comparator.comparing(CalibrationSets::setNumber).thenComparing(Path::toString)).forEach(sets::add);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
    List<Value> inputs = model.graph().inputs().stream().filter(value -> !value.isInitializer()).toList();
    List<Set> result = new ArrayList<>();
    for (Path set : sets) {
      Map<String, Feed> feeds = new LinkedHashMap<>();
      for (int index = 0; index < inputs.size(); index++) {
        Value input = inputs.get(index);
        Path file = set.resolve("input_" + index + ".pb");
        String expected = Printable.quoted(input.name()) + " of shape " + describe(input.shape());
        if (!Files.isRegularFile(file)) {
          throw new KilnException.BadInput(file + ": missing; it must hold input " + expected);
        }
        Tensor tensor = ModelReader.readTensor(file);
        String stored = storedName(file);
        if (stored != null && !stored.isEmpty() && !stored.equals(input.name())) {
          throw new KilnException.BadInput(file + ": holds " + Printable.quoted(stored) + ", expected input " + expected);
        }
        if (!fits(tensor.dims(), input.shape())) {
          throw new KilnException.BadInput(file + ": shape " + Arrays.toString(tensor.dims()) + " does not fit input " + expected);
        }
        feeds.put(input.name(), new Feed(tensor.dims(), switch (tensor.dataType()) {
          case INT64 -> tensor.longs();
          case INT32 -> tensor.ints();
          default -> tensor.floats();
        }));
      }
      result.add(new Set(set.getFileName().toString(), feeds));
    }
    return result;
  }

  private static long setNumber(Path set) {
    String suffix = set.getFileName().toString().substring("test_data_set_".length());
    return suffix.matches("[0-9]{1,18}") ? Long.parseLong(suffix) : Long.MAX_VALUE;
  }

  /** Whether every graph input of {@code model} is fed with a shape that fits its declared one. */
  static boolean fits(Set set, Model model) {
    for (Value input : model.graph().inputs()) {
      if (input.isInitializer()) {
        continue;
      }
      Feed feed = set.feeds().get(input.name());
      if (feed == null || !fits(feed.shape(), input.shape())) {
        return false;
      }
    }
    return true;
  }

  /** The set's inputs and shapes, for messages. */
  static String describe(Set set) {
    StringBuilder text = new StringBuilder();
    set.feeds().forEach((name, feed) -> text.append(text.length() == 0 ? "" : ", ").append(Printable.quoted(name))
        .append(' ').append(Arrays.toString(feed.shape())));
    return text.toString();
  }

  private static String storedName(Path file) {
    try {
      return dev.kiln.graph.proto.OnnxProto.TensorProto.parseFrom(Files.readAllBytes(file)).getName();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static boolean fits(long[] dims, Shape shape) {
    if (shape == null) {
      return true;
    }
    if (shape.rank() != dims.length) {
      return false;
    }
    for (int i = 0; i < dims.length; i++) {
      if (shape.dim(i) instanceof Shape.Known known && known.value() != dims[i]) {
        return false;
      }
    }
    return true;
  }

  private static String describe(Shape shape) {
    return shape == null ? "(unknown)" : shape.toString();
  }
}
