package dev.kiln.runner.pipeline;

import dev.kiln.common.OutputTarget;
import dev.kiln.runner.image.PngText;
import dev.kiln.runner.image.PngWriter;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes a generation's images: {@code out.png} for one image, {@code out-0.png, out-1.png, ...} for a batch.
 * Each PNG carries the text chunk {@code Software: Kiln}; a file that has it is a previous Kiln image and is
 * replaced, any other file at an output path only with {@code overwrite} (the user's --overwrite).
 */
public final class PngOutput {
  /** The tEXt keyword and value that mark a PNG as Kiln's. */
  public static final String SOFTWARE_KEY = "Software";
  public static final String SOFTWARE = "Kiln";

  private PngOutput() {}

  public static List<Path> paths(Path output, int count) {
    if (count == 1) {
      return List.of(output);
    }
    String name = output.getFileName().toString();
    int dot = name.lastIndexOf('.');
    String stem = dot > 0 ? name.substring(0, dot) : name;
    String extension = dot > 0 ? name.substring(dot) : ".png";
    List<Path> paths = new ArrayList<>();
    for (int index = 0; index < count; index++) {
      paths.add(output.resolveSibling(stem + "-" + index + extension));
    }
    return paths;
  }

  /** The output rules for each of the {@code count} PNGs; check them before generating. */
  public static List<OutputTarget> targets(Path output, int count, boolean overwrite, List<Path> inputs) {
    List<OutputTarget> targets = new ArrayList<>();
    for (Path path : paths(output, count)) {
      targets.add(OutputTarget.file(path, "generate").recognizedBy(PngOutput::isKilnPng).inputs(inputs).overwrite(overwrite));
    }
    return targets;
  }

  /** Whether {@code file} is a PNG Kiln wrote (its Software text chunk says Kiln). */
  public static boolean isKilnPng(Path file) {
    try {
      if (Files.size(file) > (256L << 20)) {
        return false; // No image Kiln writes is this large.
      }
      byte[] png = Files.readAllBytes(file);
      if (png.length < 8 || png[1] != 'P' || png[2] != 'N' || png[3] != 'G') {
        return false;
      }
      return SOFTWARE.equals(PngText.read(png).get(SOFTWARE_KEY));
    } catch (IOException | RuntimeException e) {
      return false;
    }
  }

  /** Writes with the default rules: previous Kiln PNGs are replaced, nothing else. */
  public static List<Path> write(GenerationResult result, Path output) {
    return write(result, output, false, List.of());
  }

  /** Encodes every image first, then writes each atomically, so a failure leaves no partial file. */
  public static List<Path> write(GenerationResult result, Path output, boolean overwrite, List<Path> inputs) {
    List<OutputTarget> targets = targets(output, result.images().size(), overwrite, inputs);
    for (OutputTarget target : targets) {
      target.check();
    }
    List<byte[]> encoded = new ArrayList<>();
    for (int index = 0; index < targets.size(); index++) {
      Map<String, String> text = new LinkedHashMap<>();
      text.put("parameters", result.parameters().get(index));
      text.put(SOFTWARE_KEY, SOFTWARE);
      encoded.add(PngWriter.encode(result.images().get(index), text));
    }
    List<Path> paths = new ArrayList<>();
    for (int index = 0; index < targets.size(); index++) {
      targets.get(index).write(encoded.get(index));
      paths.add(targets.get(index).path());
    }
    return paths;
  }
}
