package dev.kiln.runner.noise;

/**
 * Float32 logarithm and sine/cosine with the Cephes polynomials that PyTorch's AVX2 normal sampler uses
 * (ATen's avx_mathfun.h), evaluated operation by operation in float so that the results match torch's bits.
 *
 * <p>GCC compiles that header with FMA contraction, so where a product feeds an addition the two are one
 * fused multiply-add here too ({@link Math#fma}); which product of an expression is fused was pinned
 * against torch output (see NoiseParityTest). Plain libm-style math gives different last bits.
 */
final class CephesFloatMath {
  private static final float SQRT_HALF = 0.707106781186547524f;
  private static final float[] LOG_POLYNOMIAL = {
    7.0376836292E-2f, -1.1514610310E-1f, 1.1676998740E-1f, -1.2420140846E-1f, 1.4249322787E-1f,
    -1.6668057665E-1f, 2.0000714765E-1f, -2.4999993993E-1f, 3.3333331174E-1f
  };
  private static final float LOG_Q1 = -2.12194440e-4f;
  private static final float LOG_Q2 = 0.693359375f;
  private static final float MIN_NORMAL = Float.intBitsToFloat(0x00800000);

  private static final float MINUS_DP1 = -0.78515625f;
  private static final float MINUS_DP2 = -2.4187564849853515625e-4f;
  private static final float MINUS_DP3 = -3.77489497744594108e-8f;
  private static final float SINE_P0 = -1.9515295891E-4f;
  private static final float SINE_P1 = 8.3321608736E-3f;
  private static final float SINE_P2 = -1.6666654611E-1f;
  private static final float COSINE_P0 = 2.443315711809948E-005f;
  private static final float COSINE_P1 = -1.388731625493765E-003f;
  private static final float COSINE_P2 = 4.166664568298827E-002f;
  private static final float FOUR_OVER_PI = 1.27323954473516f;

  private CephesFloatMath() {}

  /** Natural logarithm for x in (0, 1], as log256_ps computes it. */
  static float log(float value) {
    if (value <= 0f) {
      return Float.NaN;
    }
    float x = Math.max(value, MIN_NORMAL);
    int bits = Float.floatToRawIntBits(x);
    int exponent = (bits >>> 23) - 0x7f;
    x = Float.intBitsToFloat((bits & ~0x7f800000) | Float.floatToRawIntBits(0.5f));
    float e = (float) exponent + 1.0f;
    boolean small = x < SQRT_HALF;
    float smallPart = small ? x : 0f;
    x = x - 1.0f;
    e = e - (small ? 1.0f : 0f);
    x = x + smallPart;
    float z = x * x;
    float y = LOG_POLYNOMIAL[0];
    for (int index = 1; index < LOG_POLYNOMIAL.length; index++) {
      y = Math.fma(y, x, LOG_POLYNOMIAL[index]);
    }
    y = y * x;
    // Of the two products summed here, GCC fuses the polynomial's.
    y = Math.fma(y, z, e * LOG_Q1);
    y = y - z * 0.5f;
    x = x + y;
    x = Math.fma(e, LOG_Q2, x);
    return x;
  }

  /** {sin(x), cos(x)} for x in [0, 2 pi), as sincos256_ps computes them. */
  static float[] sinCos(float value) {
    boolean negative = value < 0f;
    float x = Math.abs(value);
    int octant = (int) (x * FOUR_OVER_PI);
    octant = (octant + 1) & ~1;
    float y = (float) octant;
    boolean sineSwap = (octant & 4) != 0;
    boolean usePolynomialTwo = (octant & 2) == 0;
    boolean cosineNegated = ((octant - 2) & 4) == 0;
    // Cephes' extended-precision range reduction, x - y * (DP1 + DP2 + DP3), one fused step per part.
    x = Math.fma(y, MINUS_DP1, x);
    x = Math.fma(y, MINUS_DP2, x);
    x = Math.fma(y, MINUS_DP3, x);
    float z = x * x;
    float cosine = Math.fma(COSINE_P0, z, COSINE_P1);
    cosine = Math.fma(cosine, z, COSINE_P2);
    cosine = cosine * z;
    // The last product of the cosine polynomial is the fused one, z / 2 is subtracted after rounding.
    cosine = Math.fma(cosine, z, -(z * 0.5f));
    cosine = cosine + 1.0f;
    float sine = Math.fma(SINE_P0, z, SINE_P1);
    sine = Math.fma(sine, z, SINE_P2);
    sine = sine * z;
    sine = Math.fma(sine, x, x);
    float sineResult = usePolynomialTwo ? sine : cosine;
    float cosineResult = usePolynomialTwo ? cosine : sine;
    if (sineSwap != negative) {
      sineResult = -sineResult;
    }
    if (cosineNegated) {
      cosineResult = -cosineResult;
    }
    return new float[] {sineResult, cosineResult};
  }
}
