package dev.kiln.validator.quality;

import java.util.List;

/**
 * What {@code kiln compare} found: per scheduler, the judge's scores (percent of images whose colour, shape,
 * both, background match the prompt) for the reference and the candidate, the drops in points, and the PSNR of
 * each candidate image against the reference image drawn with the same prompt, seed and scheduler. No timings and
 * no absolute paths beyond the ones given, so the same inputs give a byte-identical report. A pipeline storing
 * tensors in float16 is drawn with its fp16 storage emulated in float32; referenceDrawnAs / candidateDrawnAs say so.
 */
public record QualityReport(
    String producer,
    String reference,
    String candidate,
    String grid,
    int cases,
    int steps,
    double guidance,
    int width,
    int height,
    String referenceDrawnAs,
    String candidateDrawnAs,
    double maximumDrop,
    boolean passed,
    List<SchedulerResult> schedulers,
    List<String> failures) {

  /** Judge scores in percent of the images drawn with one scheduler. */
  public record Scores(double colour, double shape, double both, double background) {}

  /**
   * One scheduler's images: scores, drops (reference − candidate, in points; negative when the candidate does
   * better), PSNR in dB (mean and minimum over images, and of the pooled squared error; identical images count as
   * 100), how many images are identical and how many verdicts changed, and the images with the lowest PSNR.
   */
  public record SchedulerResult(
      String scheduler,
      int images,
      Scores reference,
      Scores candidate,
      double colourDrop,
      double shapeDrop,
      double psnrMean,
      double psnrMin,
      double psnrPooled,
      int identicalImages,
      int changedVerdicts,
      boolean passed,
      List<ImageResult> worst) {}

  /** One image pair: prompt, seed, PSNR, and what the judge read in each. */
  public record ImageResult(String prompt, long seed, double psnr, String reference, String candidate) {}
}
