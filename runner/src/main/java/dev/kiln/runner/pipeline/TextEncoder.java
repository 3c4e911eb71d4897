package dev.kiln.runner.pipeline;

import dev.kiln.common.KilnException;
import dev.kiln.runner.InvalidRequest;
import dev.kiln.runner.tokenizer.ClipTokenizer;
import dev.kiln.runner.tokenizer.TokenizedPrompt;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A CLIP text encoder session with its tokenizer. Picks the hidden state the pipeline conditions on:
 * SD 1.x/2.x use the final (normed) hidden state, or with clip skip k the hidden state k layers earlier
 * passed through the final LayerNorm; SDXL uses the penultimate layer's un-normed state (further back with
 * clip skip) plus the second encoder's pooled, projected {@code text_embeds}.
 */
final class TextEncoder implements AutoCloseable {
  private static final Pattern HIDDEN_STATE = Pattern.compile("hidden_states\\.(\\d+)");
  private static final double LAYER_NORM_EPSILON = 1e-5;

  private final OnnxModel model;
  private final ClipTokenizer tokenizer;
  private final String idsInput;
  private final String lastHidden;
  private final String pooled;
  private final TreeMap<Integer, String> hiddenStates = new TreeMap<>();
  /**
   * The final LayerNorm's weights, recovered on first use. Published whole through a volatile field only after
   * they are filled, and always recovered from the same {@link #PROBE} prompt, so every generation (in any
   * thread, in any order) applies bit-identical weights.
   */
  private volatile FinalLayerNorm finalLayerNorm;

  private record FinalLayerNorm(float[] gamma, float[] beta) {}

  /**
   * The clip skip argument for an encoder pruned by `kiln optimize --clip-skip`: read last_hidden_state as it is. The
   * least-squares recovery of the final LayerNorm below is only for unoptimized folders.
   */
  static final int BAKED = -1;

  /** The fixed prompt the final LayerNorm is recovered from: the result must not depend on which prompt came first. */
  static final String PROBE = "a photograph of an astronaut riding a horse on the moon";

  /** The conditioning of one prompt: [1, tokens, width] hidden states and, for SDXL's second encoder, [1, P] pooled. */
  record Encoded(Tensor hidden, Tensor pooled, TokenizedPrompt tokens) {}

  TextEncoder(OnnxModel model, ClipTokenizer tokenizer) {
    this.model = model;
    this.tokenizer = tokenizer;
    this.idsInput = model.hasInput("input_ids") ? "input_ids" : model.inputs().keySet().iterator().next();
    String last = null;
    String pooledName = null;
    for (Map.Entry<String, ai.onnxruntime.TensorInfo> output : model.outputs().entrySet()) {
      String name = output.getKey();
      Matcher matcher = HIDDEN_STATE.matcher(name);
      if (matcher.matches()) {
        // An index is a layer number: anything longer than 4 digits is no CLIP export (and would overflow an int).
        if (matcher.group(1).length() > 4) {
          throw new KilnException.Unsupported(model.component() + ": output '" + name + "' names hidden state layer " + matcher.group(1)
              + "; layer indices must be from 0 to 9999");
        }
        hiddenStates.put(Integer.parseInt(matcher.group(1)), name);
      } else if (name.equals("last_hidden_state") || (last == null && output.getValue().getShape().length == 3 && !name.startsWith("hidden"))) {
        last = name;
      } else if (name.equals("text_embeds") || (pooledName == null && name.equals("pooler_output"))) {
        pooledName = name;
      }
    }
    if (last == null) {
      throw new KilnException.Unsupported(model.component() + ": no last_hidden_state (or other rank-3) output among " + model.outputs().keySet());
    }
    this.lastHidden = last;
    this.pooled = pooledName;
  }

  /** The width of the hidden states (768 for SD 1.x) from the declared output shape; 768 when it is dynamic. */
  int hiddenWidth() {
    long[] shape = model.outputs().get(lastHidden).getShape();
    long width = shape.length == 0 ? -1 : shape[shape.length - 1];
    return width > 0 && width <= Integer.MAX_VALUE ? (int) width : 768;
  }

  ClipTokenizer tokenizer() {
    return tokenizer;
  }

  OnnxModel model() {
    return model;
  }

  Encoded encode(String prompt, int clipSkip, boolean xlStyle, StageTimings timings) {
    TokenizedPrompt tokens = timings.time("tokenize", () -> tokenizer.encode(prompt));
    Map<String, ModelInput> inputs = feeds(tokens.padded());
    List<String> wanted = new ArrayList<>();
    String hiddenName;
    boolean normalize = false;
    if (clipSkip == BAKED) {
      // A pruned encoder: last_hidden_state already is the state of the baked clip skip (normed where SD needs it).
      hiddenName = lastHidden;
    } else if (xlStyle) {
      hiddenName = hiddenStateFromEnd(clipSkip + 2);
    } else if (clipSkip > 0) {
      hiddenName = hiddenStateFromEnd(clipSkip + 1);
      normalize = true;
    } else {
      hiddenName = lastHidden;
    }
    wanted.add(hiddenName);
    if (xlStyle && pooled != null) {
      wanted.add(pooled);
    }
    FinalLayerNorm norm = normalize ? recoveredFinalLayerNorm() : null;
    Map<String, Tensor> outputs = timings.time(model.component(), () -> model.run(inputs, wanted));
    Tensor hidden = outputs.get(hiddenName);
    if (normalize) {
      hidden = finalLayerNorm(hidden, norm);
    }
    return new Encoded(hidden, xlStyle && pooled != null ? outputs.get(pooled) : null, tokens);
  }

  /** Every output of the encoder for one prompt (tests check the recovered LayerNorm against them). */
  Map<String, Tensor> allOutputs(String prompt) {
    return model.run(feeds(tokenizer.encode(prompt).padded()), List.of());
  }

  /** The token ids (and an all-ones attention mask when the export takes one). */
  private Map<String, ModelInput> feeds(long[] ids) {
    Map<String, ModelInput> inputs = new java.util.HashMap<>();
    inputs.put(idsInput, ModelInput.longs(ids, 1, ids.length));
    if (model.hasInput("attention_mask")) {
      long[] ones = new long[ids.length];
      java.util.Arrays.fill(ones, 1);
      inputs.put("attention_mask", ModelInput.longs(ones, 1, ids.length));
    }
    return inputs;
  }

  /** The final LayerNorm with recovered weights (after a clip-skip encode has recovered them). */
  Tensor applyFinalLayerNorm(Tensor hidden) {
    return finalLayerNorm(hidden, recoveredFinalLayerNorm());
  }

  /** The recovered final LayerNorm, recovering it once (under a lock) on the first call. */
  private FinalLayerNorm recoveredFinalLayerNorm() {
    FinalLayerNorm norm = finalLayerNorm;
    if (norm != null) {
      return norm;
    }
    synchronized (this) {
      if (finalLayerNorm == null) {
        String preNorm = hiddenStateFromEnd(1);
        Map<String, Tensor> outputs = model.run(feeds(tokenizer.encode(PROBE).padded()), List.of(preNorm, lastHidden));
        finalLayerNorm = recoverFinalLayerNorm(outputs.get(preNorm), outputs.get(lastHidden));
      }
      return finalLayerNorm;
    }
  }

  boolean hasPooled() {
    return pooled != null;
  }

  /** The largest clip skip the exported hidden states allow (the state before the skipped layers must exist). */
  private int maxClipSkip() {
    int count = 0;
    while (hiddenStates.containsKey(hiddenStates.lastKey() - count - 1)) {
      count++;
    }
    return count;
  }

  /** hidden_states[-k] in Python terms; the export must list hidden_states.* outputs. */
  private String hiddenStateFromEnd(int fromEnd) {
    if (hiddenStates.isEmpty()) {
      throw new KilnException.Unsupported(model.component() + " exports no hidden_states.* outputs, which clip skip and SDXL need"
          + " (re-export the text encoder with output_hidden_states=True)");
    }
    int index = hiddenStates.lastKey() + 1 - fromEnd;
    String name = hiddenStates.get(index);
    if (name == null) {
      throw new InvalidRequest("clipSkip", "must be from 0 to " + maxClipSkip() + " for " + model.component() + " (hidden states 0.."
          + hiddenStates.lastKey() + "), got " + (fromEnd - 1));
    }
    return name;
  }

  /**
   * The final LayerNorm's weights are inside the ONNX file, which the runner does not parse. They are
   * recovered exactly instead: last_hidden_state = gamma * normalize(h_last) + beta holds for every token,
   * so a per-channel least-squares fit over the tokens of one prompt gives gamma and beta.
   */
  private static FinalLayerNorm recoverFinalLayerNorm(Tensor preNorm, Tensor normed) {
    int tokens = (int) preNorm.dimension(1);
    int width = (int) preNorm.dimension(2);
    float[] normalized = normalizeRows(preNorm).data();
    float[] target = normed.data();
    float[] recoveredGamma = new float[width];
    float[] recoveredBeta = new float[width];
    for (int channel = 0; channel < width; channel++) {
      double meanX = 0;
      double meanY = 0;
      for (int token = 0; token < tokens; token++) {
        meanX += normalized[token * width + channel];
        meanY += target[token * width + channel];
      }
      meanX /= tokens;
      meanY /= tokens;
      double covariance = 0;
      double variance = 0;
      for (int token = 0; token < tokens; token++) {
        double dx = normalized[token * width + channel] - meanX;
        covariance += dx * (target[token * width + channel] - meanY);
        variance += dx * dx;
      }
      double gamma = variance > 0 ? covariance / variance : 1.0;
      recoveredGamma[channel] = (float) gamma;
      recoveredBeta[channel] = (float) (meanY - gamma * meanX);
    }
    return new FinalLayerNorm(recoveredGamma, recoveredBeta);
  }

  private static Tensor finalLayerNorm(Tensor hidden, FinalLayerNorm norm) {
    float[] normalized = normalizeRows(hidden).data();
    int width = (int) hidden.dimension(-1);
    for (int index = 0; index < normalized.length; index++) {
      int channel = index % width;
      normalized[index] = normalized[index] * norm.gamma()[channel] + norm.beta()[channel];
    }
    return new Tensor(normalized, hidden.shape());
  }

  private static Tensor normalizeRows(Tensor hidden) {
    int width = (int) hidden.dimension(-1);
    float[] data = hidden.data();
    float[] result = new float[data.length];
    for (int row = 0; row < data.length / width; row++) {
      double mean = 0;
      for (int channel = 0; channel < width; channel++) {
        mean += data[row * width + channel];
      }
      mean /= width;
      double variance = 0;
      for (int channel = 0; channel < width; channel++) {
        double difference = data[row * width + channel] - mean;
        variance += difference * difference;
      }
      variance /= width;
      double scale = 1 / Math.sqrt(variance + LAYER_NORM_EPSILON);
      for (int channel = 0; channel < width; channel++) {
        result[row * width + channel] = (float) ((data[row * width + channel] - mean) * scale);
      }
    }
    return new Tensor(result, hidden.shape());
  }

  @Override
  public void close() {
    model.close();
  }
}
