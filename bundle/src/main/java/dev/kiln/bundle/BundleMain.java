package dev.kiln.bundle;

import com.fasterxml.jackson.databind.JsonNode;
import dev.kiln.common.Json;
import dev.kiln.common.KilnException;
import dev.kiln.common.Printable;
import dev.kiln.common.Progress;
import dev.kiln.runner.InvalidRequest;
import dev.kiln.runner.image.RgbImage;
import dev.kiln.runner.pipeline.ControlImage;
import dev.kiln.runner.pipeline.Device;
import dev.kiln.runner.pipeline.GenerationRequest;
import dev.kiln.runner.pipeline.GenerationResult;
import dev.kiln.runner.pipeline.PipelineFolder;
import dev.kiln.runner.pipeline.PngOutput;
import dev.kiln.runner.pipeline.StableDiffusionPipeline;
import dev.kiln.runner.pipeline.StepListener;
import dev.kiln.runner.scheduler.SchedulerKind;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The entry point of a bundle's {@code bin/generate}: verifies the bundle against its manifest, then generates with
 * the options of {@code kiln generate}. Parsed by hand so that lib/ holds nothing but the runner and ONNX Runtime.
 */
public final class BundleMain {
  /** ORT's java.util.logging lines stay off the terminal, as in the CLI; held so the logger is not collected. */
  private static final Logger ORT_JAVA_LOG = Logger.getLogger("ai.onnxruntime");

  static final Set<String> VALUED = Set.of("--bundle", "--prompt", "--negative-prompt", "--steps", "--guidance", "--scheduler",
      "--seed", "--width", "--height", "--batch", "--init-image", "--strength", "--clip-skip", "--device", "--threads", "-o", "--output",
      "--control-image", "--control-scale");
  static final Set<String> FLAGS = Set.of("--skip-verify", "--overwrite", "--json", "--help", "-h", "--control-guess-mode");

  static final String USAGE = """
      Usage: bin/generate --prompt T [--negative-prompt T] [--steps N] [--guidance G] [--scheduler S] [--seed N]
                          [--width W --height H] [--batch B] [--init-image F --strength S] [--clip-skip N]
                          [--control-image F [--control-scale S] [--control-guess-mode]]
                          [--device cpu|cuda|tensorrt] [--threads N] [-o out.png] [--overwrite] [--skip-verify] [--json]
      Generates with this bundle's pipeline. Every file is first checked against kiln-bundle.json (sha256 and size);
      --skip-verify skips that check. Defaults: -o out.png, --device the bundle's target (cpu for a cpu bundle),
      --threads 0 (one per core), --batch 1, --strength 0.8, --clip-skip 0, --control-scale 1, the rest as in
      'kiln generate'. --control-image goes to the bundle's own ControlNet (a bundle of a ControlNet pipeline).
      Exit codes: 0 done, 2 bad input or a modified bundle (the file is named), 3 internal error.
      """;

  private BundleMain() {}

  public static void main(String[] arguments) {
    ORT_JAVA_LOG.setLevel(Level.OFF);
    PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
    PrintStream err = new PrintStream(System.err, true, StandardCharsets.UTF_8);
    int code;
    try {
      code = run(arguments, out, err);
    } catch (InvalidRequest e) {
      String field = switch (e.field()) {
        case "controls" -> "control-image";
        case "guessMode" -> "control-guess-mode";
        default -> e.field().replaceAll("([A-Z])", "-$1").toLowerCase(Locale.ROOT);
      };
      err.println("generate: --" + field + " " + Printable.line(e.problem()));
      code = 2;
    } catch (KilnException e) {
      err.println("generate: " + Printable.line(e.getMessage()));
      code = e.exitCode();
    } catch (RuntimeException | OutOfMemoryError e) {
      err.println("generate: internal error: " + Printable.line(String.valueOf(e)));
      code = 3;
    }
    System.exit(code);
  }

  /** Parses, verifies, generates; returns the exit code. */
  static int run(String[] arguments, PrintStream out, PrintStream err) {
    Map<String, String> options = parse(arguments);
    if (options.containsKey("--help") || options.containsKey("-h")) {
      out.print(USAGE);
      return 0;
    }
    String bundleOption = options.get("--bundle");
    if (bundleOption == null) {
      throw new KilnException.BadInput("--bundle DIR missing (bin/generate passes it)");
    }
    Path bundle = Path.of(bundleOption).toAbsolutePath().normalize();
    JsonNode manifest = BundleManifest.read(bundle);
    if (!options.containsKey("--skip-verify")) {
      BundleManifest.verify(bundle);
    }
    String prompt = options.get("--prompt");
    if (prompt == null) {
      throw new KilnException.BadInput("--prompt T is required (see 'bin/generate --help')");
    }
    String scheduler = options.get("--scheduler");
    SchedulerKind kind = scheduler == null ? null : SchedulerKind.parse(scheduler);
    Integer steps = integer(options, "--steps");
    Double guidance = options.containsKey("--guidance") ? number(options, "--guidance") : null;
    Long seedOption = options.containsKey("--seed") ? longNumber(options, "--seed") : null;
    long seed = seedOption != null ? seedOption : new SecureRandom().nextLong() & 0xffffffffL;
    int batch = options.containsKey("--batch") ? integer(options, "--batch") : 1;
    double strength = options.containsKey("--strength") ? number(options, "--strength") : 0.8;
    int clipSkip = options.containsKey("--clip-skip") ? integer(options, "--clip-skip") : 0;
    int threads = options.containsKey("--threads") ? integer(options, "--threads") : 0;
    String target = manifest.path("target").path("executionProvider").asText("cpu");
    Device device = Device.parse(options.getOrDefault("--device", target));
    Path output = Path.of(options.getOrDefault("-o", options.getOrDefault("--output", "out.png")));
    boolean overwrite = options.containsKey("--overwrite");
    boolean json = options.containsKey("--json");
    String initImage = options.get("--init-image");
    if (initImage == null && options.containsKey("--strength")) {
      throw new KilnException.BadInput("--strength applies only to img2img: give --init-image too, or drop --strength");
    }
    String controlImage = options.get("--control-image");
    double controlScale = options.containsKey("--control-scale") ? number(options, "--control-scale") : 1.0;
    boolean guessMode = options.containsKey("--control-guess-mode");
    if (controlImage == null && (options.containsKey("--control-scale") || guessMode)) {
      throw new KilnException.BadInput((guessMode ? "--control-guess-mode" : "--control-scale") + " applies only with --control-image: give "
          + "the control image too, or drop it");
    }
    if (controlImage != null) {
      GenerationRequest.checkControlScale(controlScale, controlImage);
    }
    GenerationRequest request = new GenerationRequest(prompt, options.getOrDefault("--negative-prompt", ""), steps, guidance, kind, seed,
        integer(options, "--width"), integer(options, "--height"), batch, null, strength, clipSkip).validate();
    List<Path> inputs = new ArrayList<>(List.of(bundle));
    if (initImage != null) {
      inputs.add(Path.of(initImage));
    }
    if (controlImage != null) {
      inputs.add(Path.of(controlImage));
    }
    for (var outputTarget : PngOutput.targets(output, request.batch(), overwrite, inputs)) {
      outputTarget.check();
    }
    if (initImage != null) {
      request = request.withInitImage(RgbImage.read(Path.of(initImage)), strength).validate();
    }
    if (controlImage != null) {
      request = request.withControls(List.of(new ControlImage(RgbImage.read(Path.of(controlImage), "control image"), controlScale, controlImage)),
          guessMode).validate();
    }
    String name = manifest.path("pipeline").path("name").asText(bundle.getFileName().toString());
    PipelineFolder folder = PipelineFolder.open(bundle, name);
    long start = System.nanoTime();
    try (StableDiffusionPipeline runner = StableDiffusionPipeline.open(folder, device, threads, line -> err.println(Printable.line(line)))) {
      SchedulerKind used = kind != null ? kind : folder.defaultScheduler();
      int total = used == null ? 0 : used.evaluations(steps != null ? steps : used.usualSteps());
      GenerationResult result;
      try (Progress progress = Progress.start("generating", total, "steps", json)) {
        result = runner.generate(request, new StepListener() {
          @Override
          public void stepDone(int step, int count) {
            progress.step();
          }
        });
      }
      for (String note : result.notes()) {
        err.println("generate: note: " + Printable.line(note));
      }
      List<Path> written = PngOutput.write(result, output, overwrite, inputs);
      double totalMs = (System.nanoTime() - start) / 1e6;
      if (json) {
        Map<String, Object> report = new LinkedHashMap<>();
        report.put("outputs", written.stream().map(path -> path.toAbsolutePath().toString()).toList());
        report.put("bundle", bundle.toString());
        report.put("device", runner.device().cliName());
        report.put("scheduler", result.scheduler().cliName());
        report.put("steps", result.steps());
        report.put("guidance", result.guidance());
        report.put("seed", result.seed());
        report.put("width", result.width());
        report.put("height", result.height());
        report.put("verified", !options.containsKey("--skip-verify"));
        if (controlImage != null) {
          report.put("control", Map.of("image", Path.of(controlImage).toAbsolutePath().toString(), "scale", controlScale,
              "controlnet", runner.controlNets().get(0).toString(), "guess_mode", guessMode));
        }
        report.put("total_ms", Math.round(totalMs * 100) / 100.0);
        out.println(Json.write(report));
      } else {
        for (Path path : written) {
          out.println("wrote " + Printable.line(path.toAbsolutePath().toString()));
        }
        out.println(String.format(Locale.ROOT, "%dx%d, %s, %d steps, guidance %s, seed %d, %s, %.0f ms", result.width(), result.height(),
            result.scheduler().cliName(), result.steps(), result.guidance(), result.seed(), runner.device().cliName(), totalMs));
      }
    }
    return 0;
  }

  /** {@code --name value}, {@code --name=value} and flags; an unknown option or a missing value is bad input. */
  static Map<String, String> parse(String[] arguments) {
    Map<String, String> options = new LinkedHashMap<>();
    List<String> rest = new ArrayList<>();
    for (int index = 0; index < arguments.length; index++) {
      String argument = arguments[index];
      String name = argument;
      String value = null;
      int equals = argument.indexOf('=');
      if (argument.startsWith("--") && equals > 0) {
        name = argument.substring(0, equals);
        value = argument.substring(equals + 1);
      }
      if (FLAGS.contains(name) && value == null) {
        options.put(name, "true");
      } else if (VALUED.contains(name)) {
        if (value == null) {
          if (index + 1 >= arguments.length) {
            throw new KilnException.BadInput(name + " needs a value (see 'bin/generate --help')");
          }
          value = arguments[++index];
        }
        if (name.startsWith("--control") && options.containsKey(name)) {
          // A repeated control option would silently drop the first; a bundle has one ControlNet, its own.
          throw new KilnException.BadInput(name + " is given twice: bin/generate drives the bundle's own ControlNet with one control image"
              + " (use kiln generate --controlnet DIR for several)");
        }
        options.put(name, value);
      } else {
        rest.add(argument);
      }
    }
    if (!rest.isEmpty()) {
      throw new KilnException.BadInput("unknown argument " + Printable.quoted(rest.get(0)) + " (see 'bin/generate --help')");
    }
    return options;
  }

  static Integer integer(Map<String, String> options, String name) {
    String text = options.get(name);
    if (text == null) {
      return null;
    }
    try {
      return Integer.parseInt(text.strip());
    } catch (NumberFormatException e) {
      throw new KilnException.BadInput(name + " " + Printable.quoted(text) + ": expected a whole number");
    }
  }

  static long longNumber(Map<String, String> options, String name) {
    String text = options.get(name);
    try {
      return Long.parseLong(text.strip());
    } catch (NumberFormatException e) {
      throw new KilnException.BadInput(name + " " + Printable.quoted(text) + ": expected a whole number");
    }
  }

  static double number(Map<String, String> options, String name) {
    String text = options.get(name);
    try {
      double value = Double.parseDouble(text.strip());
      if (!Double.isFinite(value)) {
        throw new NumberFormatException();
      }
      return value;
    } catch (NumberFormatException e) {
      throw new KilnException.BadInput(name + " " + Printable.quoted(text) + ": expected a finite number");
    }
  }
}
