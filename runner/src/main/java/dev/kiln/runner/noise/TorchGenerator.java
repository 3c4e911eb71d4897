package dev.kiln.runner.noise;

/**
 * {@code torch.Generator("cpu").manual_seed(seed)} in Java: {@link #randn} returns, bit for bit, what
 * {@code torch.randn(shape, generator=g)} returns for a float32 tensor, and successive calls continue the
 * same stream (ancestral samplers draw their per-step noise from the generator that made the latents, as
 * diffusers does).
 *
 * <p>Torch has two code paths. Fewer than 16 elements: one scalar Box-Muller per pair of elements in double
 * precision from 53-bit uniforms, the sine half cached for the next element. Sixteen or more: every element
 * first gets a 24-bit float uniform, then each block of 16 is transformed in place by an 8-lane Box-Muller
 * (lanes j and j+8) with the AVX2 Cephes polynomials of {@link CephesFloatMath}; when the size is not a
 * multiple of 16, the last 16 elements are drawn again and transformed once more (overlapping the previous
 * block), which is why the tail depends on the total size.
 */
public final class TorchGenerator {
  private static final float TWO_PI = (float) (2.0 * Math.PI);
  private static final double UNIFORM_FLOAT_SCALE = 1.0 / (1 << 24);
  private static final double UNIFORM_DOUBLE_SCALE = 1.0 / (1L << 53);

  private final long seed;
  private final Mt19937 engine;
  private Double cachedNormal;

  public TorchGenerator(long seed) {
    this.seed = seed;
    this.engine = new Mt19937(seed);
  }

  public long seed() {
    return seed;
  }

  /** {@code torch.randn(count)} as float32, continuing this generator's stream. */
  public float[] randn(int count) {
    float[] values = new float[count];
    if (count >= 16) {
      fillVectorised(values);
    } else {
      for (int index = 0; index < count; index++) {
        values[index] = (float) scalarNormal();
      }
    }
    return values;
  }

  private float uniformFloat() {
    return (float) ((engine.nextUnsigned32() & 0xffffff) * UNIFORM_FLOAT_SCALE);
  }

  private double uniformDouble() {
    long high = engine.nextUnsigned32();
    long low = engine.nextUnsigned32();
    long bits = (high << 32) | low;
    return (bits & ((1L << 53) - 1)) * UNIFORM_DOUBLE_SCALE;
  }

  private double scalarNormal() {
    if (cachedNormal != null) {
      double value = cachedNormal;
      cachedNormal = null;
      return value;
    }
    double angleUniform = uniformDouble();
    double radiusUniform = uniformDouble();
    double radius = Math.sqrt(-2.0 * Math.log1p(-radiusUniform));
    double theta = 2.0 * Math.PI * angleUniform;
    cachedNormal = radius * Math.sin(theta);
    return radius * Math.cos(theta);
  }

  private void fillVectorised(float[] values) {
    int count = values.length;
    for (int index = 0; index < count; index++) {
      values[index] = uniformFloat();
    }
    for (int start = 0; start + 16 <= count; start += 16) {
      boxMuller16(values, start);
    }
    if (count % 16 != 0) {
      int start = count - 16;
      for (int index = start; index < count; index++) {
        values[index] = uniformFloat();
      }
      boxMuller16(values, start);
    }
  }

  private static void boxMuller16(float[] values, int start) {
    for (int lane = 0; lane < 8; lane++) {
      float radiusUniform = 1.0f - values[start + lane];
      float angleUniform = values[start + lane + 8];
      float radius = (float) Math.sqrt(-2.0f * CephesFloatMath.log(radiusUniform));
      float theta = TWO_PI * angleUniform;
      float[] sineCosine = CephesFloatMath.sinCos(theta);
      values[start + lane] = radius * sineCosine[1];
      values[start + lane + 8] = radius * sineCosine[0];
    }
  }
}
