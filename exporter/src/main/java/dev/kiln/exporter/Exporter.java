package dev.kiln.exporter;

import dev.kiln.common.KilnException;
import dev.kiln.common.OutputTarget;
import dev.kiln.common.StagedFile;
import dev.kiln.common.StagedFolder;
import dev.kiln.graph.Model;
import dev.kiln.graph.ModelWriter;
import dev.kiln.graph.WriteOptions;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import java.util.stream.Stream;

/**
 * {@code kiln export}: a .pt file to a model, or a pipeline folder of {@code <component>/model.pt} to a
 * diffusers/Optimum ONNX folder with everything else (tokenizer, scheduler, configs, model_index.json) copied.
 */
public final class Exporter {
  /** Tensors from 1 MiB on go to the data file (streamed from the .pt); smaller ones stay in the .onnx. */
  static final long EXTERNAL_THRESHOLD = 1L << 20;

  private Exporter() {}

  /** What one component's export did. */
  public record ComponentReport(String path, String kind, int nodes, int initializers, Map<String, Integer> opCounts,
      List<String> warnings, long wallMillis) {}

  public record Report(int opset, List<ComponentReport> components, long wallMillis) {}

  /** Exports {@code source}; {@code progress} hears each finished component's name. */
  public static Report export(Path source, Path output, int opset, String component, boolean overwrite, Consumer<String> progress) {
    return export(source, output, opset, component, Map.of(), overwrite, progress);
  }

  /** As above, with the input shapes the modules were traced at (for the baked-constant report; by input name). */
  public static Report export(Path source, Path output, int opset, String component, Map<String, long[]> tracedShapes, boolean overwrite,
      Consumer<String> progress) {
    long start = System.nanoTime();
    if (!Files.exists(source)) {
      throw new KilnException.BadInput(source + ": no such file or folder");
    }
    List<ComponentReport> reports = new ArrayList<>();
    if (Files.isDirectory(source)) {
      List<Path> archives = componentArchives(source);
      if (archives.isEmpty()) {
        throw new KilnException.BadInput(source + ": no <component>/model.pt in this folder (expected a TorchScript pipeline folder)");
      }
      if (component != null && archives.stream().noneMatch(archive -> archive.getParent().getFileName().toString().equals(component))) {
        throw new KilnException.BadInput(source + ": no component folder '" + component + "'");
      }
      Path normalizedSource = source.toAbsolutePath().normalize();
      // The rules every command's output follows: never an input, never inside one, a foreign folder only with
      // --overwrite; the folder is staged beside the output and swapped in as a whole.
      OutputTarget target = OutputTarget.folder(output, "export").inputs(source).overwrite(overwrite);
      target.check();
      try (StagedFolder staged = target.stageFolder()) {
        for (Path archive : archives) {
          String folder = archive.getParent().getFileName().toString();
          if (component != null && !folder.equals(component)) {
            continue;
          }
          Path stagedModel = staged.path().resolve(folder).resolve("model.onnx");
          createParent(stagedModel);
          Exported exported = exportOne(archive, output.resolve(folder).resolve("model.onnx"), ComponentSpec.guess(folder), opset,
              tracedShapes);
          ModelWriter.write(exported.model(), stagedModel, WriteOptions.externalAbove(EXTERNAL_THRESHOLD));
          reports.add(exported.report());
          progress.accept(folder);
        }
        copyRest(normalizedSource, staged.path());
        staged.commit();
      }
    } else {
      String kind = component != null ? component : ComponentSpec.guess(source.toAbsolutePath().getParent() == null ? ""
          : source.toAbsolutePath().getParent().getFileName().toString());
      ComponentSpec.of(kind);
      String fileName = output.getFileName().toString();
      if (!fileName.endsWith(".onnx")) {
        throw new KilnException.BadInput(output + ": a single model is written to a .onnx file");
      }
      OutputTarget target = OutputTarget.file(output, "export").inputs(source).overwrite(overwrite);
      target.check();
      Exported exported = exportOne(source, output, kind, opset, tracedShapes);
      // The data file is named after its content, so graph and weights appear together in the graph's one rename.
      try (StagedFile staged = target.stageFile()) {
        ModelWriter.write(exported.model(), staged, WriteOptions.externalAbove(EXTERNAL_THRESHOLD));
        staged.commit();
      }
      reports.add(exported.report());
      progress.accept(source.getFileName().toString());
    }
    return new Report(opset, reports, (System.nanoTime() - start) / 1_000_000);
  }

  /** How many components {@link #export} will write (for a progress bar). */
  public static int componentCount(Path source, String component) {
    if (!Files.isDirectory(source)) {
      return 1;
    }
    return (int) componentArchives(source).stream()
        .filter(archive -> component == null || archive.getParent().getFileName().toString().equals(component)).count();
  }

  private record Exported(Model model, ComponentReport report) {}

  private static Exported exportOne(Path archive, Path finalModel, String kind, int opset, Map<String, long[]> tracedShapes) {
    long start = System.nanoTime();
    // A pipeline's components have different inputs: each takes the traced shapes that name its own inputs.
    ExportResult result = TorchScriptExporter.export(archive, kind, opset, TorchScriptExporter.shapesFor(archive, kind, tracedShapes));
    Model model = result.model();
    return new Exported(model, new ComponentReport(finalModel.toString(), kind, model.graph().nodes().size(),
        model.graph().initializers().size(), result.opCounts(), result.warnings(), (System.nanoTime() - start) / 1_000_000));
  }

  private static void createParent(Path file) {
    try {
      Files.createDirectories(file.getParent());
    } catch (IOException e) {
      throw new UncheckedIOException("cannot create " + file.getParent() + ": " + e.getMessage(), e);
    }
  }

  private static List<Path> componentArchives(Path folder) {
    try (Stream<Path> children = Files.list(folder)) {
      return children.filter(Files::isDirectory).map(child -> child.resolve("model.pt")).filter(Files::isRegularFile).sorted().toList();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot list " + folder + ": " + e.getMessage(), e);
    }
  }

  /**
   * Everything but the archives, as is. Links are followed like {@code kiln optimize} follows them (the committed
   * pipelines link their configs to the fixtures): the copy holds what the user's folder shows.
   */
  private static void copyRest(Path source, Path staging) {
    try (Stream<Path> files = Files.walk(source)) {
      for (Path path : files.sorted().toList()) {
        Path relative = source.relativize(path);
        if (relative.toString().isEmpty() || path.getFileName().toString().endsWith(".pt")) {
          continue;
        }
        Path target = staging.resolve(relative.toString());
        if (Files.isDirectory(path)) {
          Files.createDirectories(target);
        } else if (!Files.exists(target)) {
          Files.createDirectories(target.getParent());
          Files.copy(path, target);
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot copy " + source + ": " + e.getMessage(), e);
    }
  }
}
