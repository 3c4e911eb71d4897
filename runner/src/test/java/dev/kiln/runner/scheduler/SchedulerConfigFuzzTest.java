package dev.kiln.runner.scheduler;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.kiln.common.KilnException;
import dev.kiln.runner.noise.TorchGenerator;
import dev.kiln.testdata.FuzzFolder;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import org.junit.jupiter.api.Test;

/**
 * Fuzz target for {@code scheduler/scheduler_config.json}: the config is read, and every scheduler Kiln implements
 * is built from it and taken through one sampling run of a few steps on four latents, as a generation would. Only
 * a {@link KilnException} may come out (refusing the config or the step count); anything else is a finding.
 * Seeds: the pipelines' scheduler configs. How targets are run and added: see {@code bench/fuzz.sh}.
 */
class SchedulerConfigFuzzTest {
  private static final FuzzFolder FOLDER = FuzzFolder.create("scheduler");
  /** Step counts a user passes: one step, a Turbo/LCM count, a usual count. */
  private static final int[] STEPS = {1, 4, 20};

  @FuzzTest(maxDuration = "10m")
  void config(byte[] input) {
    FOLDER.reset();
    try {
      SchedulerConfig config = SchedulerConfig.read(FOLDER.write("scheduler_config.json", input));
      for (SchedulerKind kind : SchedulerKind.values()) {
        for (int steps : STEPS) {
          sample(kind, config, steps);
        }
      }
    } catch (KilnException expected) {
      // The contract: a config Kiln cannot honour is refused with a typed error.
    }
  }

  /** txt2img from the first step and img2img from the middle one, as the pipeline calls the scheduler. */
  private static void sample(SchedulerKind kind, SchedulerConfig config, int steps) {
    Scheduler scheduler = kind.create(config, steps);
    double[] timesteps = scheduler.timesteps();
    if (timesteps.length != steps) {
      throw new AssertionError(kind + " made " + timesteps.length + " timesteps for " + steps + " steps");
    }
    TorchGenerator generator = new TorchGenerator(0);
    float[] latents = generator.randn(4);
    double sigma = scheduler.initNoiseSigma();
    for (int index = 0; index < latents.length; index++) {
      latents[index] = (float) (latents[index] * sigma);
    }
    for (int step = 0; step < steps; step++) {
      float[] input = scheduler.scaleModelInput(latents, step);
      latents = scheduler.step(input, step, latents, generator);
    }
    Scheduler img2img = kind.create(config, steps);
    int first = steps / 2;
    float[] noised = img2img.addNoise(new float[] {0.5f, -0.5f, 0.25f, 0f}, generator.randn(4), first);
    for (int step = first; step < steps; step++) {
      noised = img2img.step(img2img.scaleModelInput(noised, step), step, noised, generator);
    }
  }

  /** Finding: steps_offset (or a short training schedule) pushed DDIM's first timestep past alpha-bar's end. */
  @Test
  void timestepPastTheTrainingScheduleIsRefusedNamingTheConfigValues() {
    SchedulerConfig config = SchedulerConfig.read(FOLDER.write("scheduler_config.json", seed("steps-offset-5000")));
    KilnException.BadInput error = assertThrows(KilnException.BadInput.class, () -> SchedulerKind.DDIM.create(config, 20));
    assertTrue(error.getMessage().contains("timestep 5950 for 20 steps, outside the training schedule 0..999"), error.getMessage());
    assertTrue(error.getMessage().contains("steps_offset 5000"), error.getMessage());
    SchedulerConfig shortSchedule = SchedulerConfig.read(FOLDER.write("scheduler_config.json", seed("few-timesteps")));
    assertThrows(KilnException.BadInput.class, () -> SchedulerKind.LCM.create(shortSchedule, 4));
    SchedulerConfig negative = SchedulerConfig.read(FOLDER.write("scheduler_config.json", seed("steps-offset-negative")));
    String message = assertThrows(KilnException.BadInput.class, () -> SchedulerKind.DPMPP_2M.create(negative, 20)).getMessage();
    assertTrue(message.contains("timestep -3 for 20 steps") && message.contains("steps_offset -50"), message);
  }

  /** Finding: num_train_timesteps 2e9 allocated three 16 GB arrays (OutOfMemoryError) before any check. */
  @Test
  void hugeTrainingScheduleIsRefusedBeforeAllocating() {
    KilnException.BadInput error = assertThrows(KilnException.BadInput.class,
        () -> SchedulerConfig.read(FOLDER.write("scheduler_config.json", seed("train-timesteps-2e9"))));
    assertTrue(error.getMessage().contains("num_train_timesteps must be from 2 to 100000, got 2000000000"), error.getMessage());
  }

  private static byte[] seed(String name) {
    try (InputStream stream = SchedulerConfigFuzzTest.class.getResourceAsStream("SchedulerConfigFuzzTestInputs/config/" + name)) {
      return stream.readAllBytes();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
