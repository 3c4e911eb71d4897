package dev.kiln.cli;

import dev.kiln.common.KilnException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code kiln demo}: the first command a new user runs. It is {@code kiln run} on the TorchScript tiny pipeline that
 * ships in the repository — export, optimize, validate, bundle (into the bundle cache), generate — and writes
 * demo.png; every stage is real and the table shows each one's result and time. The second demo finds its bundle
 * in the cache ($KILN_CACHE, default ~/.cache/kiln; the key includes Kiln's commit, so a new build bundles anew).
 */
@Command(name = "demo", mixinStandardHelpOptions = true,
    description = {"Generate demo.png from the bundled TorchScript tiny pipeline: \"a red circle on a white background\" "
        + "(kiln run: export, optimize, validate, bundle, generate).",
        "With --json: outputs, prompt, source, bundle, cached, target, stages (name, status, detail, ms) and timings."})
public final class DemoCommand implements Callable<Integer> {
  static final String PROMPT = "a red circle on a white background";
  static final String PIPELINE = "testdata/pipelines/tiny-sd-torchscript";

  @Spec CommandSpec spec;

  @Option(names = "--pipeline", description = "Pipeline folder (TorchScript or ONNX) to use instead of the bundled " + PIPELINE + ".")
  Path pipeline;

  @Option(names = {"-o", "--output"}, defaultValue = "demo.png", description = "Output PNG (in the current directory unless a path is given).")
  Path output;

  @Option(names = "--seed", defaultValue = "0", description = "Seed of torch's CPU generator.")
  long seed;

  @Mixin JsonOption json;

  @Override
  public Integer call() {
    RunCommand run = new RunCommand();
    run.label = "demo";
    run.source = pipeline != null ? pipeline : bundledPipeline();
    run.generation.prompt = PROMPT;
    run.generation.seed = seed;
    run.generation.scheduler = "ddim";
    run.generation.steps = 20;
    run.target = "cpu";
    run.output = output;
    run.json = json;
    return run.execute(spec.commandLine().getOut(), spec.commandLine().getErr()).exitCode();
  }

  /** Finds the repository's tiny pipeline: kiln.root / KILN_ROOT, the folder above the CLI jar's target/, or the current directory. */
  static Path bundledPipeline() {
    List<Path> roots = new ArrayList<>();
    if (System.getProperty("kiln.root") != null) {
      roots.add(Path.of(System.getProperty("kiln.root")));
    }
    if (System.getenv("KILN_ROOT") != null) {
      roots.add(Path.of(System.getenv("KILN_ROOT")));
    }
    try {
      Path code = Path.of(DemoCommand.class.getProtectionDomain().getCodeSource().getLocation().toURI());
      // cli/target/kiln-cli.jar or cli/target/classes -> the repository root two folders up
      roots.add(code.getParent().getParent().getParent());
    } catch (Exception e) {
      // No code source location (unusual class loader): fall back to the working directory.
    }
    roots.add(Path.of("").toAbsolutePath());
    for (Path root : roots) {
      Path candidate = root.resolve(PIPELINE);
      if (Files.isDirectory(candidate)) {
        return candidate;
      }
    }
    throw new KilnException.BadInput("cannot find the bundled tiny pipeline " + PIPELINE + " (looked under " + roots
        + "); pass --pipeline DIR or run from the Kiln checkout");
  }
}
