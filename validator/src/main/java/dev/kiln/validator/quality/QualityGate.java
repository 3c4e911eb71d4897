package dev.kiln.validator.quality;

import dev.kiln.common.KilnException;
import dev.kiln.common.Progress;
import dev.kiln.runner.image.RgbImage;
import dev.kiln.runner.pipeline.Device;
import dev.kiln.runner.pipeline.GenerationRequest;
import dev.kiln.runner.pipeline.PipelineFolder;
import dev.kiln.runner.pipeline.StableDiffusionPipeline;
import dev.kiln.runner.scheduler.SchedulerKind;
import dev.kiln.testdata.ImageJudge;
import dev.kiln.graph.Model;
import dev.kiln.graph.ModelReader;
import dev.kiln.graph.ModelWriter;
import dev.kiln.graph.OpType;
import dev.kiln.validator.lowering.Lowering;
import dev.kiln.validator.parity.Fp16StorageEmulation;
import dev.kiln.validator.quality.QualityReport.ImageResult;
import dev.kiln.validator.quality.QualityReport.SchedulerResult;
import dev.kiln.validator.quality.QualityReport.Scores;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Stream;

/**
 * The image-quality gate for a changed pipeline (int8, fp16, mixed precision, any rewrite): the trained tiny
 * pipeline's judged grid ({@link QualityGrid}) drawn with the reference (fp32) and the candidate through the
 * runner on CPU, same prompts, seeds and schedulers; {@link ImageJudge} reads colour, shape and background in
 * every image. The gate passes when, for every scheduler, the candidate's colour and shape scores are at most
 * {@link #MAXIMUM_DROP} points below the reference's; PSNR against the reference image is reported beside it.
 *
 * <p>Both pipelines draw at the same time, each with one ONNX Runtime thread: on CPU that is the fastest use of two
 * cores for a model this small, and one thread per session keeps every image the same from run to run.
 */
public final class QualityGate {
  /** Points of judge score (percent of images) the candidate may lose, per scheduler, for colour and for shape. */
  public static final double MAXIMUM_DROP = 2.0;
  /**
   * Below this colour score the reference does not draw the tiny pipeline's scenes (chance is 1 in 6), so the
   * judge's scores mean nothing and the gate refuses to judge rather than pass two equally blank pipelines.
   */
  public static final double MINIMUM_REFERENCE_COLOUR = 50.0;
  /** PSNR given to identical images (and the cap for near-identical ones), as the validator's end-to-end check. */
  public static final double IDENTICAL_PSNR = 100;
  private static final int WORST_IMAGES = 3;

  /**
   * The images one pipeline drew, per scheduler in the grid's case order, what the judge read in each, and how it
   * was drawn: "as is", or with fp16 storage emulated (and how many Cast(float16)→Cast(float32) pairs did it).
   */
  public record Drawing(QualityGrid grid, Map<SchedulerKind, List<RgbImage>> images, Map<SchedulerKind, List<ImageJudge.Verdict>> verdicts,
      String drawnAs) {}

  private QualityGate() {}

  /** Draws the grid with both pipelines (concurrently) and judges them; progress on stderr when it is a terminal and not {@code quiet}. */
  public static QualityReport compare(Path reference, Path candidate, QualityGrid grid, boolean quiet) {
    check(reference, "reference");
    check(candidate, "candidate");
    ExecutorService workers = Executors.newFixedThreadPool(2, task -> {
      Thread thread = new Thread(task, "kiln-compare");
      thread.setDaemon(true);
      return thread;
    });
    try (Progress progress = Progress.start("compare", 2L * grid.images(), "images", quiet)) {
      Runnable step = () -> {
        synchronized (progress) {
          progress.step();
        }
      };
      Future<Drawing> wanted = workers.submit(() -> draw(reference, grid, step));
      Future<Drawing> got = workers.submit(() -> draw(candidate, grid, step));
      return judge(reference.toString(), result(wanted), candidate.toString(), result(got));
    } finally {
      workers.shutdownNow();
    }
  }

  /**
   * Every image of the grid with one pipeline, one ORT thread; {@code onImage} runs after each. A pipeline that
   * stores tensors in float16 is drawn as the validator judges every fp16 claim, by {@link Fp16StorageEmulation}:
   * ORT's CPU provider runs many fp16 nodes in float32 and drops the round trips between them, so drawing the
   * fp16 files as they are would hide the rounding and overflow a GPU sees. The emulated copy lives in a temporary
   * folder removed afterwards.
   */
  public static Drawing draw(Path pipeline, QualityGrid grid, Runnable onImage) {
    check(pipeline, "pipeline");
    dev.kiln.common.ScratchFolder scratch = null;
    try {
      Map<Path, Model> emulated = new LinkedHashMap<>();
      int pairs = 0;
      for (Path model : models(pipeline)) {
        Model read = ModelReader.read(model);
        if (Fp16StorageEmulation.applies(read)) {
          pairs += Fp16StorageEmulation.apply(read);
          emulated.put(pipeline.relativize(model), read);
        }
      }
      Path drawn = pipeline;
      if (!emulated.isEmpty()) {
        scratch = dev.kiln.common.ScratchFolder.create("compare-fp16");
        drawn = emulatedCopy(pipeline, scratch.path(), emulated);
      }
      String drawnAs = emulated.isEmpty() ? "as is" : "fp16 storage emulated in float32 (" + emulated.size()
          + " models, float16 weights widened exactly, " + pairs + " Cast(float16)->Cast(float32) pairs after float16 activations)";
      return draw(PipelineFolder.open(drawn), grid, onImage, drawnAs);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } finally {
      if (scratch != null) {
        scratch.close();
      }
    }
  }

  private static Drawing draw(PipelineFolder folder, QualityGrid grid, Runnable onImage, String drawnAs) {
    Map<SchedulerKind, List<RgbImage>> images = new LinkedHashMap<>();
    Map<SchedulerKind, List<ImageJudge.Verdict>> verdicts = new LinkedHashMap<>();
    try (StableDiffusionPipeline pipeline = StableDiffusionPipeline.open(folder, Device.CPU, 1, warning -> { })) {
      for (SchedulerKind scheduler : grid.schedulers()) {
        List<RgbImage> drawn = new ArrayList<>();
        List<ImageJudge.Verdict> read = new ArrayList<>();
        for (QualityGrid.Case item : grid.cases()) {
          RgbImage image = pipeline.generate(GenerationRequest.of(item.prompt(), item.seed()).withScheduler(scheduler)
              .withSteps(grid.steps()).withGuidance(grid.guidance())).images().get(0);
          drawn.add(image);
          read.add(judge(image));
          onImage.run();
        }
        images.put(scheduler, drawn);
        verdicts.put(scheduler, read);
      }
    } catch (KilnException.BadInput e) {
      throw e;
    } catch (KilnException e) {
      throw new KilnException.Unsupported(folder.root() + ": the runner cannot draw with it on CPU: " + e.getMessage(), e);
    }
    return new Drawing(grid, images, verdicts, drawnAs);
  }

  /** The report for two drawings of the same grid. */
  public static QualityReport judge(String referenceName, Drawing reference, String candidateName, Drawing candidate) {
    QualityGrid grid = reference.grid();
    if (!grid.equals(candidate.grid())) {
      throw new IllegalArgumentException("the drawings come from different grids");
    }
    RgbImage first = reference.images().get(grid.schedulers().get(0)).get(0);
    RgbImage firstCandidate = candidate.images().get(grid.schedulers().get(0)).get(0);
    if (first.width() != firstCandidate.width() || first.height() != firstCandidate.height()) {
      throw new KilnException.BadInput(candidateName + ": draws " + firstCandidate.width() + "x" + firstCandidate.height()
          + " by default, the reference " + referenceName + " " + first.width() + "x" + first.height() + "; compare needs the same size");
    }
    List<SchedulerResult> results = new ArrayList<>();
    List<String> failures = new ArrayList<>();
    for (SchedulerKind scheduler : grid.schedulers()) {
      SchedulerResult result = schedulerResult(scheduler, grid, reference, candidate);
      if (result.reference().colour() < MINIMUM_REFERENCE_COLOUR) {
        throw new KilnException.BadInput(referenceName + ": the judge reads the prompt's colour in only "
            + format(result.reference().colour()) + " % of the reference's " + scheduler.cliName() + " images (at least "
            + format(MINIMUM_REFERENCE_COLOUR) + " % expected): the quality gate judges the trained tiny pipeline "
            + "(testdata/pipelines/tiny-sd) and pipelines made from it");
      }
      results.add(result);
      if (result.colourDrop() > MAXIMUM_DROP) {
        failures.add(failure(scheduler, "colour", result.reference().colour(), result.candidate().colour(), result.colourDrop()));
      }
      if (result.shapeDrop() > MAXIMUM_DROP) {
        failures.add(failure(scheduler, "shape", result.reference().shape(), result.candidate().shape(), result.shapeDrop()));
      }
    }
    return new QualityReport("kiln compare", referenceName, candidateName, grid.name(), grid.cases().size(), grid.steps(),
        grid.guidance(), first.width(), first.height(), reference.drawnAs(), candidate.drawnAs(),
        MAXIMUM_DROP, failures.isEmpty(), results, failures);
  }

  private static SchedulerResult schedulerResult(SchedulerKind scheduler, QualityGrid grid, Drawing reference, Drawing candidate) {
    List<RgbImage> wanted = reference.images().get(scheduler);
    List<RgbImage> got = candidate.images().get(scheduler);
    List<ImageJudge.Verdict> wantedVerdicts = reference.verdicts().get(scheduler);
    List<ImageJudge.Verdict> gotVerdicts = candidate.verdicts().get(scheduler);
    double psnrSum = 0;
    double psnrMin = IDENTICAL_PSNR;
    double squaredSum = 0;
    long values = 0;
    int identical = 0;
    int changed = 0;
    List<ImageResult> images = new ArrayList<>();
    for (int i = 0; i < grid.cases().size(); i++) {
      byte[] a = wanted.get(i).pixels();
      byte[] b = got.get(i).pixels();
      double squared = 0;
      for (int k = 0; k < a.length; k++) {
        int difference = (a[k] & 0xff) - (b[k] & 0xff);
        squared += difference * difference;
      }
      double psnr = psnr(squared / a.length);
      psnrSum += psnr;
      psnrMin = Math.min(psnrMin, psnr);
      squaredSum += squared;
      values += a.length;
      identical += squared == 0 ? 1 : 0;
      ImageJudge.Verdict before = wantedVerdicts.get(i);
      ImageJudge.Verdict after = gotVerdicts.get(i);
      changed += before.colour().equals(after.colour()) && before.shape().equals(after.shape()) ? 0 : 1;
      QualityGrid.Case item = grid.cases().get(i);
      images.add(new ImageResult(item.prompt(), item.seed(), round(psnr), words(before), words(after)));
    }
    int count = grid.cases().size();
    Scores wantedScores = scores(grid, wantedVerdicts);
    Scores gotScores = scores(grid, gotVerdicts);
    double colourDrop = round(wantedScores.colour() - gotScores.colour());
    double shapeDrop = round(wantedScores.shape() - gotScores.shape());
    // Stable sort: ties keep the grid's order, so the list is the same on every run.
    List<ImageResult> worst = images.stream().sorted(Comparator.comparingDouble(ImageResult::psnr)).limit(WORST_IMAGES).toList();
    return new SchedulerResult(scheduler.cliName(), count, wantedScores, gotScores, colourDrop, shapeDrop,
        round(psnrSum / count), round(psnrMin), round(psnr(squaredSum / values)), identical, changed,
        colourDrop <= MAXIMUM_DROP && shapeDrop <= MAXIMUM_DROP, worst);
  }

  private static Scores scores(QualityGrid grid, List<ImageJudge.Verdict> verdicts) {
    int colour = 0;
    int shape = 0;
    int both = 0;
    int background = 0;
    for (int i = 0; i < verdicts.size(); i++) {
      QualityGrid.Case item = grid.cases().get(i);
      ImageJudge.Verdict verdict = verdicts.get(i);
      boolean colourRight = verdict.colour().equals(java.util.Optional.of(item.colour()));
      boolean shapeRight = verdict.shape().equals(java.util.Optional.of(item.shape()));
      colour += colourRight ? 1 : 0;
      shape += shapeRight ? 1 : 0;
      both += colourRight && shapeRight ? 1 : 0;
      background += verdict.background() == item.background() ? 1 : 0;
    }
    double count = verdicts.size();
    return new Scores(round(100 * colour / count), round(100 * shape / count), round(100 * both / count),
        round(100 * background / count));
  }

  private static ImageJudge.Verdict judge(RgbImage image) {
    byte[] bytes = image.pixels();
    int[] pixels = new int[image.width() * image.height()];
    for (int i = 0; i < pixels.length; i++) {
      pixels[i] = (bytes[3 * i] & 0xff) << 16 | (bytes[3 * i + 1] & 0xff) << 8 | bytes[3 * i + 2] & 0xff;
    }
    return ImageJudge.judge(pixels, image.width(), image.height());
  }

  private static String words(ImageJudge.Verdict verdict) {
    return verdict.colour().map(ImageJudge.Colour::word).orElse("none") + " " + verdict.shape().map(ImageJudge.Shape::word).orElse("none")
        + " on " + verdict.background().word();
  }

  private static double psnr(double mse) {
    return mse == 0 ? IDENTICAL_PSNR : Math.min(IDENTICAL_PSNR, 10 * Math.log10(255.0 * 255.0 / mse));
  }

  private static String failure(SchedulerKind scheduler, String what, double before, double after, double drop) {
    return scheduler.cliName() + ": " + what + " " + format(before) + " % -> " + format(after) + " % (" + format(drop)
        + " points lower, at most " + format(MAXIMUM_DROP) + " allowed)";
  }

  /** A pipeline folder the runner can draw with on CPU: no contrib op only CUDA implements (a cuda-target output). */
  private static void check(Path folder, String role) {
    PipelineFolder.open(folder);
    try {
      for (Path model : models(folder)) {
        Map<OpType, Integer> cudaOnly = Lowering.forOrtCpu().lower(ModelReader.read(model));
        if (!cudaOnly.isEmpty()) {
          throw new KilnException.BadInput(model + ": the " + role + " has ops only CUDA runs (" + cudaOnly.keySet().iterator().next().name()
              + "), so the runner cannot draw with it on CPU; compare a pipeline optimized with --target cpu");
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static List<Path> models(Path pipeline) throws IOException {
    try (Stream<Path> entries = Files.list(pipeline)) {
      return entries.map(folder -> folder.resolve("model.onnx")).filter(Files::isRegularFile).sorted().toList();
    }
  }

  /** The pipeline's files linked into {@code scratch}, the emulated models written in place of their originals. */
  private static Path emulatedCopy(Path pipeline, Path scratch, Map<Path, Model> emulated) throws IOException {
    Path copy = scratch.resolve("pipeline");
    // Kiln's own outputs are links to a staged folder: walk what the link names.
    Path source = pipeline.toRealPath();
    try (Stream<Path> files = Files.walk(source)) {
      for (Path file : files.toList()) {
        Path relative = source.relativize(file);
        Path target = copy.resolve(relative.toString());
        if (Files.isDirectory(file)) {
          Files.createDirectories(target);
        } else if (!emulated.containsKey(relative)) {
          Files.createSymbolicLink(target, file.toAbsolutePath());
        }
      }
    }
    for (Map.Entry<Path, Model> entry : emulated.entrySet()) {
      ModelWriter.write(entry.getValue(), copy.resolve(entry.getKey().toString()));
    }
    return copy;
  }


  private static Drawing result(Future<Drawing> drawing) {
    try {
      return drawing.get();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new KilnException.Unsupported("compare: interrupted", e);
    } catch (ExecutionException e) {
      if (e.getCause() instanceof RuntimeException cause) {
        throw cause;
      }
      throw new IllegalStateException(e.getCause());
    }
  }

  static double round(double value) {
    return Math.round(value * 100) / 100.0;
  }

  static String format(double value) {
    return String.format(Locale.ROOT, "%.2f", value);
  }
}
