package dev.kiln.runner.pipeline;

import dev.kiln.runner.InvalidRequest;
import java.lang.management.ManagementFactory;
import java.util.Locale;

/**
 * How large a generation may be, decided before anything is allocated: every Java array must stay under the
 * JVM's array limit, the Java-side buffers (conditioning, latents and their per-step copies, decoded images)
 * within the heap, and, on CPU, a lower bound of ONNX Runtime's largest activations (the UNet's full-resolution
 * block and its self-attention scores, the VAE's full-resolution block) within the machine's memory. The bounds
 * are lower bounds of what the run needs, so a request is refused only when it cannot possibly fit; the message
 * gives the largest batch or size that passes.
 */
final class GenerationLimits {
  /** The longest Java array (a few words under Integer.MAX_VALUE, as the JDK allows). */
  static final double MAX_ARRAY = Integer.MAX_VALUE - 8;
  private static final double FLOAT = 4;
  /** CLIP's context length; the conditioning is rows x tokens x hidden width. */
  private static final int TOKENS = 77;

  private final PipelineFolder folder;
  private final int hiddenWidth;
  private final long heapBytes;
  private final long machineBytes;

  GenerationLimits(PipelineFolder folder, int hiddenWidth, long heapBytes, long machineBytes) {
    this.folder = folder;
    this.hiddenWidth = hiddenWidth;
    this.heapBytes = heapBytes;
    this.machineBytes = machineBytes;
  }

  /** Limits of this JVM and machine. */
  static GenerationLimits ofThisMachine(PipelineFolder folder, int hiddenWidth) {
    return new GenerationLimits(folder, hiddenWidth, Runtime.getRuntime().maxMemory(), physicalMemory());
  }

  private static long physicalMemory() {
    try {
      if (ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.OperatingSystemMXBean system) {
        long total = system.getTotalMemorySize();
        return total > 0 ? total : Long.MAX_VALUE;
      }
    } catch (RuntimeException | LinkageError e) {
      // Not every JVM exposes the machine's memory; then only the Java limits apply.
    }
    return Long.MAX_VALUE;
  }

  /** What one request needs at least: the longest Java array, Java heap bytes, native bytes. */
  record Need(double longestArray, double heapBytes, double nativeBytes) {}

  Need need(double width, double height, double batch, boolean guided, boolean img2img, long unetChunk) {
    int factor = folder.vaeScaleFactor();
    double latentPixels = (height / factor) * (width / factor);
    double latents = folder.latentChannels() * latentPixels;
    double rows = batch * (guided ? 2 : 1);
    double pixels = width * height;
    double conditioning = rows * TOKENS * hiddenWidth;
    // Per step: the doubled model input, its chunks, the outputs and their concatenation (rows each), the guided
    // prediction, the scheduler's result and history (batch each); conditioning is built by repeat + concatenate.
    double heap = FLOAT * (2 * conditioning + 4 * rows * latents + 6 * batch * latents)
        // Decoding one image at a time: the decoder output (3 floats a pixel); every finished image (3 bytes a pixel).
        + FLOAT * 3 * pixels + batch * 3 * pixels
        + (img2img ? FLOAT * 3 * pixels + 3 * pixels + FLOAT * 2 * latents : 0);
    double longest = Math.max(Math.max(rows * latents, conditioning), 3 * pixels);
    double chunk = unetChunk > 0 ? unetChunk : rows;
    // The UNet's first block holds a few tensors of base channels x latent pixels; self-attention at full latent
    // resolution holds heads x tokens^2 scores per row.
    double unet = chunk * FLOAT * (4 * folder.unetBaseChannels() * latentPixels + folder.topAttentionHeads() * latentPixels * latentPixels);
    // The VAE's last block runs at full resolution with base channels; its mid-block attends over all latent pixels.
    double vae = FLOAT * (3 * folder.vaeBaseChannels() * pixels + latentPixels * latentPixels);
    return new Need(longest, heap, Math.max(unet, vae));
  }

  private boolean fits(double width, double height, double batch, boolean guided, boolean img2img, long unetChunk, boolean cpu) {
    Need need = need(width, height, batch, guided, img2img, unetChunk);
    return need.longestArray() <= MAX_ARRAY && need.heapBytes() <= heapBytes && (!cpu || need.nativeBytes() <= machineBytes);
  }

  /** Refuses a request that cannot fit, naming batch when a single image would fit and the larger side otherwise. */
  void check(int width, int height, int batch, boolean guided, boolean img2img, long unetChunk, boolean cpu) {
    if (fits(width, height, batch, guided, img2img, unetChunk, cpu)) {
      return;
    }
    Need need = need(width, height, batch, guided, img2img, unetChunk);
    String why = why(need, cpu);
    if (batch > 1 && fits(width, height, 1, guided, img2img, unetChunk, cpu)) {
      int low = 1;
      int high = batch;
      while (high - low > 1) {
        int middle = low + (high - low) / 2;
        if (fits(width, height, middle, guided, img2img, unetChunk, cpu)) {
          low = middle;
        } else {
          high = middle;
        }
      }
      throw new InvalidRequest("batch", "must be from 1 to " + low + " for " + width + "x" + height + " on this machine, got " + batch + " (" + why + ")");
    }
    boolean widthAtFault = width >= height;
    int multiple = folder.sizeMultiple();
    long low = 0;
    long high = (widthAtFault ? width : height) / multiple;
    while (high - low > 1) {
      long middle = low + (high - low) / 2;
      double side = (double) middle * multiple;
      if (widthAtFault ? fits(side, height, 1, guided, img2img, unetChunk, cpu) : fits(width, side, 1, guided, img2img, unetChunk, cpu)) {
        low = middle;
      } else {
        high = middle;
      }
    }
    String field = widthAtFault ? "width" : "height";
    if (low == 0) {
      // No size of one side fits with the other as asked: give the largest square instead.
      long square = 0;
      long top = Math.max(width, height) / multiple;
      while (top - square > 1) {
        long middle = square + (top - square) / 2;
        double side = (double) middle * multiple;
        if (fits(side, side, 1, guided, img2img, unetChunk, cpu)) {
          square = middle;
        } else {
          top = middle;
        }
      }
      throw new InvalidRequest(field, "by height " + width + "x" + height + " cannot fit on this machine; the largest square that does is "
          + square * multiple + "x" + square * multiple + " (" + why + ")");
    }
    String other = widthAtFault ? "height " + height : "width " + width;
    throw new InvalidRequest(field, "must be a multiple of " + multiple + " from " + multiple + " to " + low * multiple + " at " + other
        + " and batch 1 on this machine, got " + (widthAtFault ? width : height) + " (" + why + ")");
  }

  private String why(Need need, boolean cpu) {
    if (need.longestArray() > MAX_ARRAY) {
      return String.format(Locale.ROOT, "a buffer of %.3g values exceeds Java's array limit of %d", need.longestArray(), (long) MAX_ARRAY);
    }
    if (need.heapBytes() > heapBytes) {
      return "needs at least " + bytes(need.heapBytes()) + " of Java heap, the JVM has " + bytes(heapBytes) + " (-Xmx)";
    }
    return "ONNX Runtime needs at least " + bytes(need.nativeBytes()) + " for activations" + (cpu ? ", the machine has " + bytes(machineBytes) : "");
  }

  static String bytes(double count) {
    String[] units = {"B", "KB", "MB", "GB", "TB", "PB", "EB"};
    int unit = 0;
    while (count >= 1024 && unit < units.length - 1) {
      count /= 1024;
      unit++;
    }
    return count >= 1e6 ? String.format(Locale.ROOT, "%.3g %s", count, units[unit]) : String.format(Locale.ROOT, "%.1f %s", count, units[unit]);
  }
}
