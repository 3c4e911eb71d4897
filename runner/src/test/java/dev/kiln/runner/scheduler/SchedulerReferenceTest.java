package dev.kiln.runner.scheduler;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.common.KilnException;
import dev.kiln.runner.noise.TorchGenerator;
import java.io.IOException;
import java.io.InputStream;
import java.util.Locale;
import org.junit.jupiter.api.Test;

/**
 * Each scheduler against the independent numpy reference (runner/src/test/python/make_scheduler_reference.py):
 * timesteps, sigmas, and a whole sampling run on Gaussian data whose exact denoiser is known in closed form.
 */
class SchedulerReferenceTest {
  static final double MEAN = 0.3;
  static final double STD = 0.5;

  /** The exact epsilon / v prediction for data x0 ~ N(MEAN, STD^2), given the sample's alpha-bar. */
  static float[] analyticModel(float[] sample, double alpha, boolean vPrediction) {
    float[] output = new float[sample.length];
    double gain = Math.sqrt(alpha) * STD * STD / (alpha * STD * STD + 1 - alpha);
    for (int index = 0; index < sample.length; index++) {
      double x0 = MEAN + gain * (sample[index] - Math.sqrt(alpha) * MEAN);
      double epsilon = (sample[index] - Math.sqrt(alpha) * x0) / Math.sqrt(1 - alpha);
      output[index] = (float) (vPrediction ? Math.sqrt(alpha) * epsilon - Math.sqrt(1 - alpha) * x0 : epsilon);
    }
    return output;
  }

  static double[] sigmasOf(Scheduler scheduler) {
    if (scheduler instanceof EulerScheduler euler) {
      return euler.sigmas();
    }
    if (scheduler instanceof LmsScheduler lms) {
      return lms.sigmas();
    }
    if (scheduler instanceof DpmSolverMultistepScheduler dpm) {
      return dpm.sigmas();
    }
    if (scheduler instanceof UniPcScheduler unipc) {
      return unipc.sigmas();
    }
    return null;
  }

  /** Runs a full sampling loop with the analytic model; the model knows each step's true noise level. */
  static float[] sample(Scheduler scheduler, SchedulerConfig config, int count, long seed) {
    NoiseSchedule schedule = new NoiseSchedule(config);
    double[] sigmas = sigmasOf(scheduler);
    double[] timesteps = scheduler.timesteps();
    TorchGenerator generator = new TorchGenerator(seed);
    float[] latents = generator.randn(count);
    double scale = scheduler.initNoiseSigma();
    for (int index = 0; index < count; index++) {
      latents[index] = (float) (latents[index] * scale);
    }
    for (int step = 0; step < timesteps.length; step++) {
      double alpha = sigmas != null ? 1 / (1 + sigmas[step] * sigmas[step]) : schedule.alphaCumprod((int) timesteps[step]);
      float[] input = scheduler.scaleModelInput(latents, step);
      latents = scheduler.step(analyticModel(input, alpha, config.vPrediction()), step, latents, generator);
    }
    return latents;
  }

  static SchedulerKind kindOf(String name, boolean karras) {
    return switch (name) {
      case "ddim" -> SchedulerKind.DDIM;
      case "euler" -> SchedulerKind.EULER;
      case "euler_ancestral" -> SchedulerKind.EULER_ANCESTRAL;
      case "lms" -> SchedulerKind.LMS;
      case "dpmpp_2m" -> karras ? SchedulerKind.DPMPP_2M_KARRAS : SchedulerKind.DPMPP_2M;
      case "lcm" -> SchedulerKind.LCM;
      case "pndm" -> SchedulerKind.PNDM;
      case "unipc" -> SchedulerKind.UNIPC;
      default -> throw new IllegalArgumentException(name);
    };
  }

  @Test
  void matchesTheNumpyReference() throws IOException {
    JsonNode reference;
    try (InputStream in = getClass().getResourceAsStream("/reference/schedulers.json")) {
      reference = new ObjectMapper().readTree(in);
    }
    int cases = 0;
    StringBuilder report = new StringBuilder();
    for (JsonNode entry : reference.get("cases")) {
      String name = entry.get("scheduler").asText();
      boolean karras = entry.get("karras").asBoolean();
      SchedulerConfig config = SchedulerConfig.fromJson(entry.get("config"), "reference");
      if (karras && name.equals("euler")) {
        config = config.withKarrasSigmas(true);
      }
      int steps = entry.get("steps").asInt();
      String label = name + (karras ? "-karras" : "") + " " + steps + " steps " + config.timestepSpacing() + " " + config.predictionType();
      Scheduler scheduler = kindOf(name, karras).create(config, steps);
      double[] timesteps = scheduler.timesteps();
      JsonNode expectedTimesteps = entry.get("timesteps");
      assertEquals(expectedTimesteps.size(), timesteps.length, label);
      for (int index = 0; index < timesteps.length; index++) {
        // Integer schedules are exact; Karras timesteps are fractional and see float32 vs float64 alpha-bar.
        assertEquals(expectedTimesteps.get(index).asDouble(), timesteps[index], karras ? 1e-3 : 1e-9, label + " timestep " + index);
      }
      double[] sigmas = sigmasOf(scheduler);
      if (entry.hasNonNull("sigmas")) {
        assertNotNull(sigmas, label);
        JsonNode expectedSigmas = entry.get("sigmas");
        assertEquals(expectedSigmas.size(), sigmas.length, label);
        for (int index = 0; index < sigmas.length; index++) {
          double want = expectedSigmas.get(index).asDouble();
          assertEquals(want, sigmas[index], 1e-5 * Math.max(1, want), label + " sigma " + index);
        }
      }
      float[] result = sample(scheduler, config, 64, 0);
      JsonNode expectedFinal = entry.get("final");
      double worst = 0;
      for (int index = 0; index < result.length; index++) {
        worst = Math.max(worst, Math.abs(expectedFinal.get(index).asDouble() - result[index]));
      }
      report.append(String.format(Locale.ROOT, "%-45s max |java - numpy| = %.2e%n", label, worst));
      assertTrue(worst < 2e-4, label + " final latents differ by " + worst);
      cases++;
    }
    System.out.print(report);
    assertEquals(25, cases);
  }

  /**
   * Every scheduler at its usual step count turns pure noise into samples of the data distribution. For
   * Gaussian data the probability-flow ODE is linear, so a deterministic sampler must land each element on
   * mean + std * (x_T - sqrt(a_T) mean) / sqrt(a_T std^2 + 1 - a_T); stochastic samplers are judged on the
   * sample mean and spread.
   */
  @Test
  void eachSchedulerDenoisesTheAnalyticCase() {
    SchedulerConfig config = SchedulerConfig.stableDiffusion15();
    NoiseSchedule schedule = new NoiseSchedule(config);
    int count = 4096;
    for (SchedulerKind kind : SchedulerKind.values()) {
      Scheduler scheduler = kind.create(config, kind.usualSteps());
      float[] initial = new TorchGenerator(11).randn(count);
      for (int index = 0; index < count; index++) {
        initial[index] = (float) (initial[index] * scheduler.initNoiseSigma());
      }
      float[] start = scheduler.scaleModelInput(initial, 0);
      double[] sigmas = sigmasOf(scheduler);
      double alphaStart = sigmas != null ? 1 / (1 + sigmas[0] * sigmas[0]) : schedule.alphaCumprod((int) scheduler.timesteps()[0]);
      float[] result = sample(scheduler, config, count, 11);
      double sum = 0;
      double squares = 0;
      double flowError = 0;
      for (int index = 0; index < count; index++) {
        sum += result[index];
        squares += result[index] * result[index];
        double standardized = (start[index] - Math.sqrt(alphaStart) * MEAN) / Math.sqrt(alphaStart * STD * STD + 1 - alphaStart);
        double exact = MEAN + STD * standardized;
        if (kind == SchedulerKind.DPMPP_2M || kind == SchedulerKind.DPMPP_2M_KARRAS || kind == SchedulerKind.UNIPC) {
          // DPM-Solver++'s and UniPC's last step jumps from the last sigma to zero, i.e. returns the denoiser's estimate there.
          double last = sigmas[sigmas.length - 2];
          double alphaLast = 1 / (1 + last * last);
          double onFlow = Math.sqrt(alphaLast) * MEAN + Math.sqrt(alphaLast * STD * STD + 1 - alphaLast) * standardized;
          double gain = Math.sqrt(alphaLast) * STD * STD / (alphaLast * STD * STD + 1 - alphaLast);
          exact = MEAN + gain * (onFlow - Math.sqrt(alphaLast) * MEAN);
        }
        flowError += (result[index] - exact) * (result[index] - exact);
      }
      double mean = sum / count;
      double std = Math.sqrt(squares / count - mean * mean);
      double rms = Math.sqrt(flowError / count);
      System.out.printf(Locale.ROOT, "%-16s %2d steps: mean %.4f std %.4f rms vs exact flow %.4f%n", kind.cliName(), kind.usualSteps(), mean, std, rms);
      switch (kind) {
        case EULER_ANCESTRAL -> {
          assertEquals(MEAN, mean, 0.03, kind + " mean");
          assertEquals(STD, std, 0.1, kind + " std");
        }
        case LCM -> {
          assertEquals(MEAN, mean, 0.03, kind + " mean");
          // A consistency sampler driven by the posterior mean keeps only part of the spread in 4 steps.
          assertTrue(std > 0.1 && std < STD, kind + " std " + std);
        }
        // First-order solvers carry more discretisation error at their usual step counts.
        case DDIM, EULER -> assertTrue(rms < 0.05, kind + " is " + rms + " (rms) away from the exact ODE solution");
        default -> assertTrue(rms < 0.02, kind + " is " + rms + " (rms) away from the exact ODE solution");
      }
    }
  }

  @Test
  void knownTimestepsOfSd15() {
    SchedulerConfig config = SchedulerConfig.stableDiffusion15();
    double[] ddim = SchedulerKind.DDIM.create(config, 20).timesteps();
    assertEquals(951, ddim[0]);
    assertEquals(1, ddim[19]);
    double[] lcm = SchedulerKind.LCM.create(config, 4).timesteps();
    assertEquals(java.util.Arrays.toString(new double[] {999, 759, 499, 259}), java.util.Arrays.toString(lcm));
    double[] turbo = SchedulerKind.EULER_ANCESTRAL.create(config.withSpacing("trailing"), 1).timesteps();
    assertEquals(999, turbo[0]);
  }

  @Test
  void badNamesAndStepsAreBadInput() {
    KilnException.BadInput unknown = assertThrows(KilnException.BadInput.class, () -> SchedulerKind.parse("heun"));
    assertTrue(unknown.getMessage().contains("ddim"), unknown.getMessage());
    assertEquals(SchedulerKind.EULER_ANCESTRAL, SchedulerKind.parse("euler_ancestral"));
    assertEquals(SchedulerKind.DPMPP_2M_KARRAS, SchedulerKind.parse("DPM++2M-Karras"));
    assertThrows(KilnException.BadInput.class, () -> SchedulerKind.DDIM.create(SchedulerConfig.stableDiffusion15(), 0));
    assertThrows(KilnException.Unsupported.class, () -> SchedulerConfig.fromJson(
        new ObjectMapper().createObjectNode().put("beta_schedule", "squaredcos_cap_v2"), "test"));
  }
}
