package dev.kiln.runner.pipeline;

import dev.kiln.common.AtomicFiles;
import dev.kiln.runner.image.PngWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** Writes a generation's images: {@code out.png} for one image, {@code out-0.png, out-1.png, ...} for a batch. */
public final class PngOutput {
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

  /** Encodes every image first, then writes each atomically, so a failure leaves no partial file. */
  public static List<Path> write(GenerationResult result, Path output) {
    List<Path> paths = paths(output, result.images().size());
    List<byte[]> encoded = new ArrayList<>();
    for (int index = 0; index < paths.size(); index++) {
      encoded.add(PngWriter.encode(result.images().get(index), Map.of("parameters", result.parameters().get(index))));
    }
    for (int index = 0; index < paths.size(); index++) {
      AtomicFiles.write(paths.get(index), encoded.get(index));
    }
    return paths;
  }
}
