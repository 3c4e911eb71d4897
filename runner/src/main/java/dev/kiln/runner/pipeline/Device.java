package dev.kiln.runner.pipeline;

import dev.kiln.common.KilnException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.TimeUnit;

/**
 * Where sessions run. CUDA and TensorRT are requested from ORT only when an NVIDIA GPU is visible: asking
 * for them makes the GPU jar extract its 583 MB CUDA provider, which is wasted (and then fails) on a
 * CPU-only machine, and ORT lists CUDA as "available" regardless.
 */
public enum Device {
  CPU,
  CUDA,
  TENSORRT;

  public static Device parse(String name) {
    return switch (name.trim().toLowerCase(Locale.ROOT)) {
      case "cpu" -> CPU;
      case "cuda", "gpu" -> CUDA;
      case "tensorrt", "trt" -> TENSORRT;
      default -> throw new KilnException.BadInput("unknown device '" + name + "' (expected cpu, cuda or tensorrt)");
    };
  }

  public String cliName() {
    return name().toLowerCase(Locale.ROOT);
  }

  /** True when an NVIDIA device node exists or nvidia-smi lists a GPU. */
  public static boolean gpuPresent() {
    if (Files.exists(Path.of("/dev/nvidia0")) || Files.exists(Path.of("/dev/nvidiactl"))) {
      return true;
    }
    try {
      Process process = new ProcessBuilder("nvidia-smi", "-L").redirectErrorStream(true).start();
      if (!process.waitFor(5, TimeUnit.SECONDS)) {
        process.destroyForcibly();
        return false;
      }
      String listing = new String(process.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
      return process.exitValue() == 0 && listing.contains("GPU");
    } catch (java.io.IOException e) {
      return false;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return false;
    }
  }
}
