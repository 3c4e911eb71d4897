package dev.kiln.optimizer.precision;

import dev.kiln.graph.Model;
import dev.kiln.graph.ModelReader;
import dev.kiln.graph.ModelWriter;
import dev.kiln.runner.image.RgbImage;
import dev.kiln.testdata.ImageJudge;
import dev.kiln.validator.lowering.Lowering;
import dev.kiln.validator.parity.Fp16StorageEmulation;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

/**
 * A converted pipeline folder made runnable on ORT's CPU provider as a proof: every component lowered to its
 * specification (the cuda profile's contrib ops included) and fp16 storage emulated (each float16 tensor rounded
 * through an explicit Cast pair in a float32 graph), so the runner's image shows what float16 storage does to it.
 */
final class EmulatedPipeline {
  private EmulatedPipeline() {}

  /** Copies {@code converted} into {@code target} with every model.onnx replaced by its emulation proof graph. */
  static Path of(Path converted, Path target) {
    try {
      Path source = converted.toRealPath();
      try (Stream<Path> paths = Files.walk(source)) {
        for (Path path : (Iterable<Path>) paths.sorted()::iterator) {
          Path copy = target.resolve(source.relativize(path).toString());
          if (Files.isDirectory(path)) {
            Files.createDirectories(copy);
          } else if (path.getFileName().toString().equals("model.onnx")) {
            Model model = ModelReader.read(path);
            Lowering.forOrtCpu().lower(model);
            Fp16StorageEmulation.apply(model);
            ModelWriter.write(model, copy);
          } else if (!path.getFileName().toString().startsWith(".") && !path.getFileName().toString().endsWith(".data")) {
            Files.copy(path, copy);
          }
        }
      }
      return target;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Peak signal-to-noise ratio of two 8-bit RGB images in dB (infinite when identical). */
  static double psnr(RgbImage expected, RgbImage actual) {
    byte[] a = expected.pixels();
    byte[] b = actual.pixels();
    if (a.length != b.length) {
      throw new IllegalArgumentException("images differ in size");
    }
    double sum = 0;
    for (int index = 0; index < a.length; index++) {
      double difference = (a[index] & 0xff) - (b[index] & 0xff);
      sum += difference * difference;
    }
    double mse = sum / a.length;
    return mse == 0 ? Double.POSITIVE_INFINITY : 10 * Math.log10(255.0 * 255.0 / mse);
  }

  static ImageJudge.Verdict judge(RgbImage image) {
    int[] pixels = new int[image.width() * image.height()];
    for (int y = 0; y < image.height(); y++) {
      for (int x = 0; x < image.width(); x++) {
        pixels[y * image.width() + x] = (image.red(x, y) << 16) | (image.green(x, y) << 8) | image.blue(x, y);
      }
    }
    return ImageJudge.judge(pixels, image.width(), image.height());
  }
}
