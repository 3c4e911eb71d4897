package dev.kiln.optimizer.quantize;

import dev.kiln.optimizer.precision.CalibrationSets;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Calibration sets for the trained tiny pipeline from its recorded reference run (testdata/pipelines/tiny-sd/
 * reference: the DDIM loop's latents per step, the text encoder's outputs): the UNet's real inputs at eight steps
 * across the schedule under classifier-free guidance, and the VAE decoder's real latents of the last eight steps.
 * Sets alternate early/late so the even (calibration) and odd (held-out) halves both span the schedule.
 */
final class TinyCalibration {
  static final Path PIPELINE = Path.of(System.getProperty("kiln.root", "..")).resolve("testdata/pipelines/tiny-sd");
  private static final Path REFERENCE = PIPELINE.resolve("reference");
  private static final int[] UNET_STEPS = {0, 2, 5, 8, 11, 14, 17, 19};
  /** vae_decoder/config.json's scaling_factor. */
  private static final float SCALING_FACTOR = 0.419337f;

  private TinyCalibration() {}

  static List<CalibrationSets.Set> unet() {
    float[] noise = read("initial_noise.npy");
    float[] latents = read("latents_per_step.npy");
    float[] uncond = read("uncond_last_hidden_state.npy");
    float[] cond = read("last_hidden_state.npy");
    int size = noise.length;
    List<CalibrationSets.Set> sets = new ArrayList<>();
    for (int index = 0; index < UNET_STEPS.length; index++) {
      int step = UNET_STEPS[index];
      float[] latent = step == 0 ? noise : Arrays.copyOfRange(latents, (step - 1) * size, step * size);
      Map<String, CalibrationSets.Feed> feeds = new LinkedHashMap<>();
      feeds.put("sample", new CalibrationSets.Feed(new long[] {2, 4, 8, 8}, concat(latent, latent)));
      feeds.put("timestep", new CalibrationSets.Feed(new long[] {1}, new long[] {(19 - step) * 50 + 1}));
      feeds.put("encoder_hidden_states", new CalibrationSets.Feed(new long[] {2, 77, 64}, concat(uncond, cond)));
      sets.add(new CalibrationSets.Set("step_" + step, feeds));
    }
    return sets;
  }

  static List<CalibrationSets.Set> vaeDecoder() {
    float[] latents = read("latents_per_step.npy");
    int size = 4 * 8 * 8;
    List<CalibrationSets.Set> sets = new ArrayList<>();
    for (int step = 12; step < 20; step++) {
      float[] latent = Arrays.copyOfRange(latents, step * size, (step + 1) * size);
      for (int i = 0; i < latent.length; i++) {
        latent[i] /= SCALING_FACTOR;
      }
      sets.add(new CalibrationSets.Set("latents_" + step,
          Map.of("latent_sample", new CalibrationSets.Feed(new long[] {1, 4, 8, 8}, latent))));
    }
    return sets;
  }

  private static float[] concat(float[] first, float[] second) {
    float[] joined = Arrays.copyOf(first, first.length + second.length);
    System.arraycopy(second, 0, joined, first.length, second.length);
    return joined;
  }

  /** A little-endian float32 .npy file (format 1.0, C order) as a flat array. */
  static float[] read(String name) {
    try {
      ByteBuffer data = ByteBuffer.wrap(Files.readAllBytes(REFERENCE.resolve(name))).order(ByteOrder.LITTLE_ENDIAN);
      int headerLength = Short.toUnsignedInt(data.getShort(8));
      String header = new String(data.array(), 10, headerLength, StandardCharsets.US_ASCII);
      if (!header.contains("'descr': '<f4'") || header.contains("'fortran_order': True")) {
        throw new IllegalStateException(name + ": expected little-endian float32 in C order, found " + header);
      }
      data.position(10 + headerLength);
      float[] values = new float[data.remaining() / 4];
      data.asFloatBuffer().get(values);
      return values;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
