package dev.kiln.validator.parity;

import dev.kiln.common.KilnException;
import dev.kiln.graph.ModelReader;
import dev.kiln.runner.image.RgbImage;
import dev.kiln.runner.pipeline.Device;
import dev.kiln.runner.pipeline.GenerationRequest;
import dev.kiln.runner.pipeline.PipelineFolder;
import dev.kiln.runner.pipeline.StableDiffusionPipeline;
import dev.kiln.validator.report.CheckResult;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Stream;

/**
 * Pipeline mode end to end: one image from the candidate pipeline and one from the reference, same prompt, seed,
 * scheduler and size, through the runner on CPU, compared by PSNR. A candidate with CUDA-only contrib ops is
 * skipped here (its components are judged in CPU form by the parity checks).
 */
public final class EndToEnd {
  public static final String PROMPT = "a red circle on a white background";
  /** Below this the two pipelines draw visibly different images. */
  public static final double MINIMUM_PSNR = 30;
  private static final int STEPS = 10;

  private EndToEnd() {}

  public static CheckResult run(Path candidate, Path reference, int size) {
    try {
      if (needsCpuForm(candidate)) {
        // Lowered graphs run under NO_OPT in the parity checks; the runner lets ORT optimize, and ORT's own
        // fusions misjudge some lowered forms (a QuickGelu on double), so such a pipeline is not drawn on CPU.
        return CheckResult.skip("end-to-end", "the candidate has ops only CUDA runs, so the runner cannot draw with"
            + " it on CPU; its components were judged in their CPU form above");
      }
      RgbImage want = generate(reference, size);
      RgbImage got = generate(candidate, size);
      String label = size + "x" + size + ", " + STEPS + " steps, seed 0";
      if (want.width() != got.width() || want.height() != got.height()) {
        return CheckResult.fail("end-to-end", label, "image", "the candidate drew " + got.width() + "x" + got.height()
            + ", the reference " + want.width() + "x" + want.height(), null);
      }
      double squared = 0;
      int differing = 0;
      byte[] a = want.pixels();
      byte[] b = got.pixels();
      for (int i = 0; i < a.length; i++) {
        int difference = (a[i] & 0xff) - (b[i] & 0xff);
        squared += difference * difference;
        differing += difference != 0 ? 1 : 0;
      }
      double mse = squared / a.length;
      double psnr = mse == 0 ? 100 : Math.min(100, 10 * Math.log10(255.0 * 255.0 / mse));
      Map<String, Object> numbers = new LinkedHashMap<>();
      numbers.put("psnr", Metrics.round(psnr));
      numbers.put("differingValues", differing);
      numbers.put("values", a.length);
      String message = String.format(Locale.ROOT, "PSNR %s dB (%d of %d pixel values differ) for \"%s\"",
          mse == 0 ? "inf (identical)" : String.format(Locale.ROOT, "%.2f", psnr), differing, a.length, PROMPT);
      return psnr >= MINIMUM_PSNR ? CheckResult.pass("end-to-end", label, "image", message, numbers)
          : CheckResult.fail("end-to-end", label, "image", message + "; below " + MINIMUM_PSNR + " dB", numbers);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static RgbImage generate(Path folder, int size) {
    try (StableDiffusionPipeline pipeline = StableDiffusionPipeline.open(PipelineFolder.open(folder), Device.CPU, 1,
        warning -> { })) {
      return pipeline.generate(GenerationRequest.of(PROMPT, 0).withSteps(STEPS).withSize(size, size)).images().get(0);
    } catch (KilnException e) {
      throw new KilnException.Unsupported(folder + ": the runner cannot generate with it: " + e.getMessage(), e);
    }
  }

  private static boolean needsCpuForm(Path pipeline) throws IOException {
    for (Path model : models(pipeline)) {
      if (!CpuForm.prepare(ModelReader.read(model)).unchanged()) {
        return true;
      }
    }
    return false;
  }

  private static java.util.List<Path> models(Path pipeline) throws IOException {
    try (Stream<Path> entries = Files.list(pipeline)) {
      return entries.map(folder -> folder.resolve("model.onnx")).filter(Files::isRegularFile).sorted().toList();
    }
  }
}
