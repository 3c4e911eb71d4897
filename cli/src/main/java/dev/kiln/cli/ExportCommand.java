package dev.kiln.cli;

import dev.kiln.common.Json;
import dev.kiln.common.Progress;
import dev.kiln.exporter.Exporter;
import dev.kiln.exporter.TorchScriptExporter;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** {@code kiln export SOURCE -o OUT}: TorchScript (.pt or a pipeline folder of them) to ONNX, in Java. */
@Command(name = "export", mixinStandardHelpOptions = true, showDefaultValues = true,
    description = "Export a traced TorchScript .pt, or a pipeline folder of <component>/model.pt, to ONNX "
        + "(a model, or a diffusers/Optimum ONNX folder with tokenizer, scheduler and configs copied).",
    exitCodeListHeading = "Exit codes:%n",
    exitCodeList = {"0:exported", "2:bad input (hostile or malformed archive, scripted control flow, unsupported op, existing output)"})
public final class ExportCommand implements Callable<Integer> {
  @Spec CommandSpec spec;

  @Parameters(index = "0", paramLabel = "SOURCE", description = "A TorchScript .pt file or a folder of <component>/model.pt.")
  Path source;

  @Option(names = {"-o", "--output"}, required = true, description = "Output .onnx file (for a .pt) or pipeline folder.")
  Path output;

  @Option(names = "--opset", description = "ONNX opset, 14 to 17.")
  int opset = TorchScriptExporter.DEFAULT_OPSET;

  @Option(names = "--component", description = "For a .pt: text_encoder, text_encoder_2, unet, controlnet, vae_encoder, vae_decoder or generic "
      + "(default: from the folder name). For a pipeline folder: export only this component folder.")
  String component;

  @Option(names = "--traced-shape", paramLabel = "INPUT=AxBx..", description = "The shape INPUT was traced at (repeatable), "
      + "e.g. sample=2x4x64x64: integer constants used as sizes are reported where they equal one of its dynamic dims (a model "
      + "constant of the same value, such as 2 heads at batch 2, is reported too: traces at distinctive sizes tell them apart).")
  java.util.List<String> tracedShapes = new java.util.ArrayList<>();

  @Option(names = "--overwrite", description = "Replace an existing output.")
  boolean overwrite;

  @Mixin JsonOption json;

  @Override
  public Integer call() {
    PrintWriter out = spec.commandLine().getOut();
    Exporter.Report report;
    try (Progress progress = Progress.start("export", Exporter.componentCount(source, component), "components", json.enabled())) {
      report = Exporter.export(source, output, opset, component, parseShapes(), overwrite, name -> progress.step());
    }
    if (json.enabled()) {
      out.println(Json.write(report));
      out.flush();
      return 0;
    }
    for (Exporter.ComponentReport component : report.components()) {
      out.println(String.format(Locale.ROOT, "%s (%s, opset %d): %d nodes, %d initializers, %d aten/prim calls lowered in %d ms",
          component.path(), component.kind(), report.opset(), component.nodes(), component.initializers(),
          component.opCounts().values().stream().mapToInt(Integer::intValue).sum(), component.wallMillis()));
      for (String warning : component.warnings()) {
        out.println("  warning: " + warning);
      }
    }
    out.flush();
    return 0;
  }

  private java.util.Map<String, long[]> parseShapes() {
    java.util.Map<String, long[]> shapes = new java.util.LinkedHashMap<>();
    for (String text : tracedShapes) {
      int equals = text.indexOf('=');
      if (equals <= 0 || !text.substring(equals + 1).matches("[0-9]+(x[0-9]+)*")) {
        throw new dev.kiln.common.KilnException.BadInput("--traced-shape " + text + ": expected INPUT=AxBx.. (e.g. sample=2x4x64x64)");
      }
      String[] parts = text.substring(equals + 1).split("x");
      long[] dims = new long[parts.length];
      for (int axis = 0; axis < parts.length; axis++) {
        dims[axis] = Long.parseLong(parts[axis]);
      }
      shapes.put(text.substring(0, equals), dims);
    }
    return shapes;
  }
}
