package dev.kiln.validator.quality;

import dev.kiln.common.KilnException;
import dev.kiln.runner.scheduler.SchedulerKind;
import dev.kiln.testdata.ImageJudge.Background;
import dev.kiln.testdata.ImageJudge.Colour;
import dev.kiln.testdata.ImageJudge.Shape;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Which images the quality gate draws with both pipelines: prompts of the tiny pipeline's judged evaluation
 * ({@code testdata/tiny/evaluate.py}: "a {colour} {shape} on a {background} background"), seeds, schedulers.
 *
 * <p>{@code full} is exactly the evaluation's grid of {@code testdata/pipelines/tiny-sd/eval_scores.json}: every
 * background × colour × shape (72 prompts, in evaluate.py's order) × seeds 0–2 = 216 images, each drawn with every
 * scheduler of {@link #SCHEDULERS}; {@code eval} is the same 216 with DDIM only, the evaluation's own sampler (a third
 * of the time). {@code quick} is 12 of those 216 (every colour twice, every shape three times,
 * every background four times, every seed four times), with DDIM only, for the unit tests and a fast look.
 */
public record QualityGrid(String name, List<Case> cases, List<SchedulerKind> schedulers, int steps, double guidance) {
  /** The evaluation's sampler (DDIM) and two that integrate the same model differently: an ODE and a multistep solver. */
  public static final List<SchedulerKind> SCHEDULERS = List.of(SchedulerKind.DDIM, SchedulerKind.EULER, SchedulerKind.DPMPP_2M);
  /** eval_scores.json's sampler: 20 steps, guidance 7.5. */
  public static final int STEPS = 20;
  public static final double GUIDANCE = 7.5;
  private static final int SEEDS = 3;
  private static final int QUICK_CASES = 12;

  /** One image to draw: the prompt's words (what the judge should read) and the seed. */
  public record Case(Colour colour, Shape shape, Background background, long seed) {
    public String prompt() {
      return "a " + colour.word() + " " + shape.word() + " on a " + background.word() + " background";
    }
  }

  public QualityGrid {
    cases = List.copyOf(cases);
    schedulers = List.copyOf(schedulers);
  }

  /** The judged evaluation's 216 images (72 prompts × seeds 0–2) with every scheduler. */
  public static QualityGrid full() {
    return new QualityGrid("full", evaluationCases(), SCHEDULERS, STEPS, GUIDANCE);
  }

  /** The judged evaluation exactly: its 216 images with its sampler, DDIM 20 steps. */
  public static QualityGrid evaluation() {
    return new QualityGrid("eval", evaluationCases(), List.of(SchedulerKind.DDIM), STEPS, GUIDANCE);
  }

  private static List<Case> evaluationCases() {
    List<Case> cases = new ArrayList<>();
    // evaluate.py: prompts ordered background, colour, shape; jobs = prompt-major, then seed.
    for (Background background : Background.values()) {
      for (Colour colour : Colour.values()) {
        for (Shape shape : Shape.values()) {
          for (int seed = 0; seed < SEEDS; seed++) {
            cases.add(new Case(colour, shape, background, seed));
          }
        }
      }
    }
    return cases;
  }

  /**
   * Twelve images of the full grid: case i takes colour i mod 6, shape i mod 4, background i mod 3 and seed
   * (i / 3) mod 3, so each colour, shape, background and seed appears equally often; DDIM, the evaluation's
   * sampler, only (the suite's time budget). One changed verdict moves a score by 8.3 points, so this grid passes
   * only when no verdict changes.
   */
  public static QualityGrid quick() {
    List<Case> cases = new ArrayList<>();
    for (int i = 0; i < QUICK_CASES; i++) {
      cases.add(new Case(Colour.values()[i % 6], Shape.values()[i % 4], Background.values()[i % 3], (i / 3) % SEEDS));
    }
    return new QualityGrid("quick", cases, List.of(SchedulerKind.DDIM), STEPS, GUIDANCE);
  }

  /** {@code full}, {@code eval} or {@code quick}; anything else is bad input. */
  public static QualityGrid parse(String name) {
    return switch (name.toLowerCase(Locale.ROOT)) {
      case "full" -> full();
      case "eval" -> evaluation();
      case "quick" -> quick();
      default -> throw new KilnException.BadInput("--grid: expected full, eval or quick, got \"" + name + "\"");
    };
  }

  /** Images each pipeline draws: cases × schedulers. */
  public int images() {
    return cases.size() * schedulers.size();
  }
}
