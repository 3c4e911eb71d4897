package dev.kiln.cli;

import dev.kiln.common.Json;
import dev.kiln.common.OutputTarget;
import dev.kiln.common.Printable;
import dev.kiln.optimizer.profiles.Target;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** {@code kiln bundle}: a pipeline folder as a self-contained, verifiable deployment that runs on a bare Java runtime. */
@Command(name = "bundle", mixinStandardHelpOptions = true,
    description = {"Package an ONNX pipeline folder as a bundle: its components (diffusers/Optimum layout), lib/ (the runner and "
        + "ONNX Runtime's CPU artifact, or the GPU one for cuda/tensorrt), bin/generate (POSIX sh, needs only Java 17+) and "
        + "kiln-bundle.json (sha256 and size of every file, target, precision, opsets, provenance).",
        "The same inputs give byte-identical bundles (the creation time is kept apart in kiln-bundle.created).",
        "With --json: bundle, target, files, bytes, libraryBytes, modelBytes."})
public final class BundleCommand implements Callable<Integer> {
  @Spec CommandSpec spec;

  @Parameters(index = "0", paramLabel = "PIPELINE_DIR", description = "An ONNX pipeline folder (model_index.json, unet/, ...); "
      + "TorchScript goes through 'kiln run' or 'kiln export' first.")
  Path pipeline;

  @Option(names = {"-o", "--output"}, required = true, paramLabel = "BUNDLE", description = "The bundle folder to write.")
  Path output;

  @Option(names = "--target", defaultValue = "cpu", description = "cpu, cuda or tensorrt: which ONNX Runtime artifact lib/ gets "
      + "and the device bin/generate uses by default (default: ${DEFAULT-VALUE}).")
  String target;

  @Option(names = "--overwrite", description = "Replace a folder at -o that Kiln did not write (default: only a Kiln output or an empty folder).")
  boolean overwrite;

  @Mixin JsonOption json;

  @Override
  public Integer call() {
    Target parsed = Target.parse(target);
    OutputTarget destination = OutputTarget.folder(output, "bundle").inputs(pipeline).overwrite(overwrite);
    destination.check();
    BundleWriter.Written written = BundleWriter.write(pipeline, destination, parsed,
        new BundleWriter.Provenance(pipeline, List.of()));
    PrintWriter out = spec.commandLine().getOut();
    if (json.enabled()) {
      out.println(Json.write(summary(written)));
    } else {
      out.println("wrote bundle " + Printable.line(written.path().toAbsolutePath().toString()));
      out.println(String.format(Locale.ROOT, "  %s, %d files, %.1f MB (models %.1f MB, lib %.1f MB); run it with %s/bin/generate --prompt ...",
          parsed.id(), ((Map<?, ?>) written.manifest().get("files")).size(), written.bytes() / 1e6, written.modelBytes() / 1e6,
          written.libraryBytes() / 1e6, Printable.line(written.path().toString())));
    }
    out.flush();
    return 0;
  }

  static Map<String, Object> summary(BundleWriter.Written written) {
    Map<String, Object> json = new LinkedHashMap<>();
    json.put("bundle", written.path().toAbsolutePath().toString());
    json.put("target", ((Map<?, ?>) written.manifest().get("target")).get("executionProvider"));
    json.put("files", ((Map<?, ?>) written.manifest().get("files")).size());
    json.put("bytes", written.bytes());
    json.put("libraryBytes", written.libraryBytes());
    json.put("modelBytes", written.modelBytes());
    return json;
  }
}
