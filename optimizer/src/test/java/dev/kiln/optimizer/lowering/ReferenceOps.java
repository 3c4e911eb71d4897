package dev.kiln.optimizer.lowering;

/**
 * Plain-Java reference implementations of the ONNX Runtime contrib ops that Kiln lowers, written from the
 * operator specifications (ORT's ContribOperators.md), in double precision, one loop nest per op.
 *
 * <p>They are deliberately naive: no blocking, no shared code with the lowerings, so that a lowering and its
 * reference can only agree when both follow the spec. Tensors are row-major {@code float[]} with a shape.
 */
final class ReferenceOps {

  private ReferenceOps() {}

  /** A dense row-major float tensor. */
  record Tensor(float[] data, long[] shape) {
    Tensor {
      if (data.length != elementCount(shape)) {
        throw new IllegalArgumentException("data length " + data.length + " does not match shape");
      }
    }

    int dimension(int axis) {
      return (int) shape[axis < 0 ? shape.length + axis : axis];
    }
  }

  static long elementCount(long[] shape) {
    long count = 1;
    for (long dimension : shape) {
      count *= dimension;
    }
    return count;
  }

  /**
   * com.microsoft.GroupNorm: y = gamma * (x - mean) / sqrt(variance + epsilon) + beta, mean and (population)
   * variance over each group of channels and all spatial positions of one sample; activation 1 applies SiLU.
   * With {@code channelsLast} the input is [N, H, W, C], otherwise [N, C, H, W].
   */
  static Tensor groupNorm(Tensor x, float[] gamma, float[] beta, int groups, float epsilon, boolean silu,
      boolean channelsLast) {
    int batch = x.dimension(0);
    int channels = channelsLast ? x.dimension(-1) : x.dimension(1);
    int spatial = (int) (elementCount(x.shape()) / batch / channels);
    int channelsPerGroup = channels / groups;
    if (channels % groups != 0 || gamma.length != channels || beta.length != channels) {
      throw new IllegalArgumentException("channels " + channels + " groups " + groups);
    }
    float[] out = new float[x.data().length];
    for (int n = 0; n < batch; n++) {
      for (int g = 0; g < groups; g++) {
        double sum = 0;
        for (int c = g * channelsPerGroup; c < (g + 1) * channelsPerGroup; c++) {
          for (int p = 0; p < spatial; p++) {
            sum += x.data()[index(n, c, p, channels, spatial, channelsLast)];
          }
        }
        double count = (double) channelsPerGroup * spatial;
        double mean = sum / count;
        double squares = 0;
        for (int c = g * channelsPerGroup; c < (g + 1) * channelsPerGroup; c++) {
          for (int p = 0; p < spatial; p++) {
            double centered = x.data()[index(n, c, p, channels, spatial, channelsLast)] - mean;
            squares += centered * centered;
          }
        }
        double inverseDeviation = 1.0 / Math.sqrt(squares / count + epsilon);
        for (int c = g * channelsPerGroup; c < (g + 1) * channelsPerGroup; c++) {
          for (int p = 0; p < spatial; p++) {
            int at = index(n, c, p, channels, spatial, channelsLast);
            double normalized = (x.data()[at] - mean) * inverseDeviation * gamma[c] + beta[c];
            out[at] = (float) (silu ? normalized / (1 + Math.exp(-normalized)) : normalized);
          }
        }
      }
    }
    return new Tensor(out, x.shape().clone());
  }

  private static int index(int n, int c, int p, int channels, int spatial, boolean channelsLast) {
    return channelsLast ? (n * spatial + p) * channels + c : (n * channels + c) * spatial + p;
  }

  /**
   * com.microsoft.SkipGroupNorm: s = x + skip + bias, y = GroupNorm(s). The skip is [N, H, W, C], [N, 1, 1, C]
   * or [N, C] for channels-last ([N, C, H, W], [N, C, 1, 1] or [N, C] otherwise); bias is [C] or null.
   * Returns {y, s}.
   */
  static Tensor[] skipGroupNorm(Tensor x, float[] gamma, float[] beta, Tensor skip, float[] bias, int groups,
      float epsilon, boolean silu, boolean channelsLast) {
    int batch = x.dimension(0);
    int channels = channelsLast ? x.dimension(-1) : x.dimension(1);
    int spatial = (int) (elementCount(x.shape()) / batch / channels);
    boolean skipPerChannel = elementCount(skip.shape()) == (long) batch * channels;
    float[] sum = new float[x.data().length];
    for (int n = 0; n < batch; n++) {
      for (int c = 0; c < channels; c++) {
        for (int p = 0; p < spatial; p++) {
          int at = index(n, c, p, channels, spatial, channelsLast);
          float skipValue = skipPerChannel ? skip.data()[n * channels + c] : skip.data()[at];
          // Float addition in the kernel's order (x + skip) + bias, so S matches bit for bit where it can.
          float value = x.data()[at] + skipValue;
          sum[at] = bias == null ? value : value + bias[c];
        }
      }
    }
    Tensor s = new Tensor(sum, x.shape().clone());
    return new Tensor[] {groupNorm(s, gamma, beta, groups, epsilon, silu, channelsLast), s};
  }

  /** com.microsoft.BiasSplitGelu: t = X + bias on the last dim D, y = t[..., :D/2] * Gelu(t[..., D/2:]). */
  static Tensor biasSplitGelu(Tensor x, float[] bias) {
    int hidden = x.dimension(-1);
    int half = hidden / 2;
    int rows = (int) (elementCount(x.shape()) / hidden);
    float[] out = new float[rows * half];
    for (int r = 0; r < rows; r++) {
      for (int j = 0; j < half; j++) {
        double left = (double) x.data()[r * hidden + j] + bias[j];
        double right = (double) x.data()[r * hidden + half + j] + bias[half + j];
        out[r * half + j] = (float) (left * gelu(right));
      }
    }
    long[] shape = x.shape().clone();
    shape[shape.length - 1] = half;
    return new Tensor(out, shape);
  }

  /** Exact (erf) GELU. */
  static double gelu(double x) {
    return 0.5 * x * (1 + erf(x / Math.sqrt(2)));
  }

  /** com.microsoft.BiasAdd: Y = X + bias (per last-dim channel) + skip. */
  static Tensor biasAdd(Tensor x, float[] bias, Tensor skip) {
    int channels = x.dimension(-1);
    float[] out = new float[x.data().length];
    for (int i = 0; i < out.length; i++) {
      out[i] = (float) ((double) x.data()[i] + bias[i % channels] + skip.data()[i]);
    }
    return new Tensor(out, x.shape().clone());
  }

  /**
   * com.microsoft.NhwcConv in 2-D: X [N, H, W, C], W in OHWI layout [M, kH, kW, C/group], B [M] or null;
   * explicit pads [top, left, bottom, right]. Output [N, outH, outW, M].
   */
  static Tensor nhwcConv(Tensor x, Tensor weight, float[] bias, int[] strides, int[] pads, int[] dilations,
      int group) {
    int batch = x.dimension(0);
    int height = x.dimension(1);
    int width = x.dimension(2);
    int channels = x.dimension(3);
    int outChannels = weight.dimension(0);
    int kernelHeight = weight.dimension(1);
    int kernelWidth = weight.dimension(2);
    int channelsPerGroup = weight.dimension(3);
    if (channelsPerGroup * group != channels) {
      throw new IllegalArgumentException("weight in-channels " + channelsPerGroup + " x group " + group);
    }
    int outPerGroup = outChannels / group;
    int outHeight = (height + pads[0] + pads[2] - dilations[0] * (kernelHeight - 1) - 1) / strides[0] + 1;
    int outWidth = (width + pads[1] + pads[3] - dilations[1] * (kernelWidth - 1) - 1) / strides[1] + 1;
    float[] out = new float[batch * outHeight * outWidth * outChannels];
    for (int n = 0; n < batch; n++) {
      for (int oy = 0; oy < outHeight; oy++) {
        for (int ox = 0; ox < outWidth; ox++) {
          for (int m = 0; m < outChannels; m++) {
            int g = m / outPerGroup;
            double sum = bias == null ? 0 : bias[m];
            for (int ky = 0; ky < kernelHeight; ky++) {
              int iy = oy * strides[0] - pads[0] + ky * dilations[0];
              if (iy < 0 || iy >= height) {
                continue;
              }
              for (int kx = 0; kx < kernelWidth; kx++) {
                int ix = ox * strides[1] - pads[1] + kx * dilations[1];
                if (ix < 0 || ix >= width) {
                  continue;
                }
                for (int ci = 0; ci < channelsPerGroup; ci++) {
                  int c = g * channelsPerGroup + ci;
                  sum += (double) x.data()[((n * height + iy) * width + ix) * channels + c]
                      * weight.data()[((m * kernelHeight + ky) * kernelWidth + kx) * channelsPerGroup + ci];
                }
              }
            }
            out[((n * outHeight + oy) * outWidth + ox) * outChannels + m] = (float) sum;
          }
        }
      }
    }
    return new Tensor(out, new long[] {batch, outHeight, outWidth, outChannels});
  }

  /**
   * com.microsoft.MultiHeadAttention without masks or past state: query [B, S, N*H], key [B, L, N*H],
   * value [B, L, N*Hv], optional bias [N*H + N*H + N*Hv] added to q, k, v; softmax(scale * q k^T) v per head,
   * scale defaulting to 1/sqrt(H). Output [B, S, N*Hv].
   */
  static Tensor multiHeadAttention(Tensor query, Tensor key, Tensor value, float[] bias, int heads,
      Float scale) {
    int batch = query.dimension(0);
    int sequence = query.dimension(1);
    int keySequence = key.dimension(1);
    int hidden = query.dimension(2);
    int valueHidden = value.dimension(2);
    int headSize = hidden / heads;
    int valueHeadSize = valueHidden / heads;
    double factor = scale == null ? 1.0 / Math.sqrt(headSize) : scale;
    float[] out = new float[batch * sequence * valueHidden];
    double[] scores = new double[keySequence];
    for (int b = 0; b < batch; b++) {
      for (int h = 0; h < heads; h++) {
        for (int s = 0; s < sequence; s++) {
          double max = Double.NEGATIVE_INFINITY;
          for (int l = 0; l < keySequence; l++) {
            double dot = 0;
            for (int d = 0; d < headSize; d++) {
              int channel = h * headSize + d;
              double q = query.data()[(b * sequence + s) * hidden + channel] + (bias == null ? 0 : bias[channel]);
              double k = key.data()[(b * keySequence + l) * hidden + channel]
                  + (bias == null ? 0 : bias[hidden + channel]);
              dot += q * k;
            }
            scores[l] = dot * factor;
            max = Math.max(max, scores[l]);
          }
          double total = 0;
          for (int l = 0; l < keySequence; l++) {
            scores[l] = Math.exp(scores[l] - max);
            total += scores[l];
          }
          for (int d = 0; d < valueHeadSize; d++) {
            int channel = h * valueHeadSize + d;
            double sum = 0;
            for (int l = 0; l < keySequence; l++) {
              double v = value.data()[(b * keySequence + l) * valueHidden + channel]
                  + (bias == null ? 0 : bias[2 * hidden + channel]);
              sum += scores[l] / total * v;
            }
            out[(b * sequence + s) * valueHidden + channel] = (float) sum;
          }
        }
      }
    }
    return new Tensor(out, new long[] {batch, sequence, valueHidden});
  }

  /** Slices index {@code part} of dim 3 out of a packed [B, S, N, P, H] tensor, giving [B, S, N*H]. */
  static Tensor unpack(Tensor packed, int part) {
    int batch = packed.dimension(0);
    int sequence = packed.dimension(1);
    int heads = packed.dimension(2);
    int parts = packed.dimension(3);
    int headSize = packed.dimension(4);
    float[] out = new float[batch * sequence * heads * headSize];
    for (int bs = 0; bs < batch * sequence; bs++) {
      for (int h = 0; h < heads; h++) {
        for (int d = 0; d < headSize; d++) {
          out[(bs * heads + h) * headSize + d] = packed.data()[((bs * heads + h) * parts + part) * headSize + d];
        }
      }
    }
    return new Tensor(out, new long[] {batch, sequence, (long) heads * headSize});
  }

  /**
   * erf in double precision: Maclaurin series for |x| < 2 (terms stay below 3, so cancellation costs little)
   * and the Laplace continued fraction of erfc beyond, evaluated bottom-up.
   */
  static double erf(double x) {
    double magnitude = Math.abs(x);
    if (magnitude < 2) {
      double term = magnitude;
      double sum = magnitude;
      for (int n = 1; n < 60; n++) {
        term *= -magnitude * magnitude / n;
        sum += term / (2 * n + 1);
      }
      return Math.copySign(sum * 2 / Math.sqrt(Math.PI), x);
    }
    if (magnitude > 6) {
      return Math.copySign(1.0, x);
    }
    // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + ...)))))
    double fraction = magnitude;
    for (int k = 80; k >= 1; k--) {
      fraction = magnitude + (k / 2.0) / fraction;
    }
    double complement = Math.exp(-magnitude * magnitude) / Math.sqrt(Math.PI) / fraction;
    return Math.copySign(1 - complement, x);
  }
}
