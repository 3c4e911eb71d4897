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
    // PNDM evaluates its second timestep twice (PLMS warm-up), so it has one entry more than steps.
    if (timesteps.length != kind.evaluations(steps)) {
      throw new AssertionError(kind + " made " + timesteps.length + " timesteps for " + steps + " steps");
    }
    TorchGenerator generator = new TorchGenerator(0);
    float[] latents = generator.randn(4);
    double sigma = scheduler.initNoiseSigma();
    for (int index = 0; index < latents.length; index++) {
      latents[index] = (float) (latents[index] * sigma);
    }
    for (int step = 0; step < timesteps.length; step++) {
      float[] input = scheduler.scaleModelInput(latents, step);
      latents = scheduler.step(input, step, latents, generator);
    }
    Scheduler img2img = kind.create(config, steps);
    int first = steps / 2;
    float[] noised = img2img.addNoise(new float[] {0.5f, -0.5f, 0.25f, 0f}, generator.randn(4), first);
    for (int step = first; step < img2img.timesteps().length; step++) {
      noised = img2img.step(img2img.scaleModelInput(noised, step), step, noised, generator);
    }
  }

  /**
   * Finding: steps_offset (or a short training schedule) pushed DDIM's first timestep past alpha-bar's end. The
   * config reader now refuses an offset outside the training schedule itself; a short schedule is refused when a
   * scheduler asks for more distinct timesteps than it has.
   */
  @Test
  void timestepPastTheTrainingScheduleIsRefusedNamingTheConfigValues() {
    String offset = assertThrows(KilnException.BadInput.class,
        () -> SchedulerConfig.read(FOLDER.write("scheduler_config.json", seed("steps-offset-5000")))).getMessage();
    assertTrue(offset.contains("steps_offset must be an integer from 0 to 999, got 5000"), offset);
    SchedulerConfig shortSchedule = SchedulerConfig.read(FOLDER.write("scheduler_config.json", seed("few-timesteps")));
    assertThrows(KilnException.BadInput.class, () -> SchedulerKind.LCM.create(shortSchedule, 4));
    String negative = assertThrows(KilnException.BadInput.class,
        () -> SchedulerConfig.read(FOLDER.write("scheduler_config.json", seed("steps-offset-negative")))).getMessage();
    assertTrue(negative.contains("steps_offset must be an integer from 0 to 999, got -50"), negative);
  }

  /** Finding: num_train_timesteps 2e9 allocated three 16 GB arrays (OutOfMemoryError) before any check. */
  @Test
  void hugeTrainingScheduleIsRefusedBeforeAllocating() {
    KilnException.BadInput error = assertThrows(KilnException.BadInput.class,
        () -> SchedulerConfig.read(FOLDER.write("scheduler_config.json", seed("train-timesteps-2e9"))));
    assertTrue(error.getMessage().contains("num_train_timesteps must be an integer from 2 to 100000, got 2.0E9"), error.getMessage());
  }

  private static byte[] seed(String name) {
    try (InputStream stream = SchedulerConfigFuzzTest.class.getResourceAsStream("SchedulerConfigFuzzTestInputs/config/" + name)) {
      return stream.readAllBytes();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
