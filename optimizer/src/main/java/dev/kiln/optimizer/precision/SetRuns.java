package dev.kiln.optimizer.precision;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.Function;

/**
 * Runs independent calibration or verification sets on one session two at a time ({@code OrtSession.run} is
 * thread-safe). Each run keeps ORT's single intra-op thread, so every result is what a lone run gives; results come
 * back in set order, so what is combined from them does not depend on which finished first.
 */
final class SetRuns {
  private SetRuns() {}

  /** Two: the sets of a search are a handful, and each run holds its own intermediates. */
  static final int PARALLEL = 2;
  /**
   * Models with more float weights than this run their sets one at a time: each run holds its own intermediates, and
   * two concurrent calibration runs of the full-size UNet (3.4 GB of weights, attention scores decomposed) took over
   * 9 GB of native memory where one took 6 GB.
   */
  static final long SERIAL_ABOVE_BYTES = 1L << 30;

  private static final ExecutorService POOL = pool("kiln-precision-set");
  /** For candidates measured side by side, whose own set runs may use {@link #POOL} (one pool would deadlock). */
  private static final ExecutorService CANDIDATES = pool("kiln-precision-candidate");

  private static ExecutorService pool(String name) {
    return Executors.newFixedThreadPool(PARALLEL, task -> {
      Thread thread = new Thread(task, name);
      thread.setDaemon(true);
      return thread;
    });
  }

  /** Runs {@code run} on each set, two at a time unless {@code serial}; results in set order. */
  static <R> List<R> map(List<CalibrationSets.Set> sets, boolean serial, Function<CalibrationSets.Set, R> run) {
    return map(sets, serial, run, POOL);
  }

  /**
   * Measures independent candidates (the mixed search's modules) two at a time unless {@code serial}, results in item
   * order. A candidate's session holds ORT's prepacked copies of the MatMul weights and one run's intermediates: two
   * full-size UNet candidates at once took over 9 GB of anonymous memory, so large models measure them one by one.
   */
  static <T, R> List<R> candidates(List<T> items, boolean serial, Function<T, R> run) {
    return map(items, serial, run, CANDIDATES);
  }

  private static <T, R> List<R> map(List<T> items, boolean serial, Function<T, R> run, ExecutorService pool) {
    if (items.size() < 2 || serial) {
      return items.stream().map(run).toList();
    }
    List<Future<R>> pending = new ArrayList<>();
    for (T item : items) {
      pending.add(pool.submit(() -> run.apply(item)));
    }
    List<R> results = new ArrayList<>();
    RuntimeException failure = null;
    for (Future<R> future : pending) {
      try {
        results.add(future.get());
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException("interrupted while running calibration sets", e);
      } catch (ExecutionException e) {
        // The first failing set in set order is reported, whichever failed first.
        if (failure == null) {
          failure = e.getCause() instanceof RuntimeException runtime ? runtime
              : e.getCause() instanceof Error error ? rethrow(error) : new IllegalStateException(e.getCause());
        }
      }
    }
    if (failure != null) {
      throw failure;
    }
    return results;
  }

  private static RuntimeException rethrow(Error error) {
    throw error;
  }
}
