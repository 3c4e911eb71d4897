package dev.kiln.optimizer.precision;

import dev.kiln.common.HalfFloats;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.IntStream;

/**
 * Checks the streamed conversion's float32 → float16 step on every one of the 2^32 float32 bit patterns against
 * {@link HalfOracle} and against the first implementation ({@code HalfFloats.toFloat16(HalfTensors.clamp(x))}),
 * values and clamp counts. Minutes of CPU: run by {@code bench/fp16-exhaustive.sh}, not by the suite (which checks
 * every float16 value's neighbourhood and random samples in {@code HalfTensorsTest}).
 */
public final class HalfExhaustiveCheck {
  private HalfExhaustiveCheck() {}

  public static void main(String[] arguments) {
    long start = System.nanoTime();
    int blocks = 1 << 12;
    int blockSize = 1 << 20;
    AtomicLong mismatches = new AtomicLong();
    AtomicLong clamped = new AtomicLong();
    AtomicLong firstMismatch = new AtomicLong(-1);
    IntStream.range(0, blocks).parallel().forEach(block -> {
      int[] bits = new int[blockSize];
      short[] halves = new short[blockSize];
      long expectedClamped = 0;
      for (int i = 0; i < blockSize; i++) {
        bits[i] = block * blockSize + i;
      }
      long counted = HalfTensors.convert(bits, halves, blockSize);
      for (int i = 0; i < blockSize; i++) {
        float value = Float.intBitsToFloat(bits[i]);
        short oracle = HalfOracle.toHalf(value);
        short first = HalfFloats.toFloat16(HalfTensors.clamp(value));
        if (HalfOracle.clamps(value)) {
          expectedClamped++;
        }
        if (halves[i] != oracle || halves[i] != first || HalfTensors.toHalf(bits[i]) != oracle
            || HalfTensors.clamps(bits[i]) != HalfOracle.clamps(value)) {
          mismatches.incrementAndGet();
          firstMismatch.compareAndSet(-1, bits[i] & 0xffffffffL);
        }
      }
      if (counted != expectedClamped) {
        mismatches.incrementAndGet();
      }
      clamped.addAndGet(counted);
    });
    System.out.printf("float32 -> float16 (clamped, round to nearest even): %d bit patterns checked, %d mismatches%s, "
        + "%d clamped, %.1f s%n", (long) blocks * blockSize, mismatches.get(),
        firstMismatch.get() < 0 ? "" : String.format(" (first at 0x%08x)", firstMismatch.get()), clamped.get(),
        (System.nanoTime() - start) / 1e9);
    if (mismatches.get() != 0) {
      System.exit(1);
    }
  }
}
