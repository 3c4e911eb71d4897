package dev.kiln.runner.noise;

/**
 * The 32-bit Mersenne Twister exactly as PyTorch's CPU generator runs it: seeded from the low 32 bits of
 * the seed with the standard 1812433253 recurrence, tempered outputs, state regenerated every 624 draws.
 */
final class Mt19937 {
  private static final int STATE_SIZE = 624;
  private static final int SHIFT_SIZE = 397;
  private static final int MATRIX_A = 0x9908b0df;
  private static final int UPPER_MASK = 0x80000000;
  private static final int LOWER_MASK = 0x7fffffff;

  private final int[] state = new int[STATE_SIZE];
  private int next;

  Mt19937(long seed) {
    state[0] = (int) seed;
    for (int index = 1; index < STATE_SIZE; index++) {
      int previous = state[index - 1];
      state[index] = 1812433253 * (previous ^ (previous >>> 30)) + index;
    }
    next = STATE_SIZE;
  }

  /** The next 32 random bits, as an unsigned value in a long. */
  long nextUnsigned32() {
    if (next >= STATE_SIZE) {
      regenerate();
    }
    int value = state[next++];
    value ^= value >>> 11;
    value ^= (value << 7) & 0x9d2c5680;
    value ^= (value << 15) & 0xefc60000;
    value ^= value >>> 18;
    return value & 0xffffffffL;
  }

  private void regenerate() {
    for (int index = 0; index < STATE_SIZE; index++) {
      int mixed = (state[index] & UPPER_MASK) | (state[(index + 1) % STATE_SIZE] & LOWER_MASK);
      int twisted = (mixed >>> 1) ^ ((mixed & 1) != 0 ? MATRIX_A : 0);
      state[index] = state[(index + SHIFT_SIZE) % STATE_SIZE] ^ twisted;
    }
    next = 0;
  }
}
