package dev.kiln.runner.pipeline;

import dev.kiln.common.KilnException;
import dev.kiln.runner.tokenizer.ClipTokenizer;
import java.util.List;

/**
 * The text side of a pipeline: its CLIP text encoder (SDXL: both, the second giving the pooled embedding) and
 * how a prompt and a negative prompt become the UNet's conditioning, with clip skip, SDXL's zeros for an empty
 * negative prompt, and a note for a prompt longer than CLIP reads. Thread-safe, as {@link TextEncoder} is.
 */
public final class PromptEncoder implements AutoCloseable {
  private final TextEncoder first;
  private final TextEncoder second;
  private final boolean forceZerosForEmptyPrompt;

  /** [negative x batch ; prompt x batch] when guided, [prompt x batch] otherwise; {@code pooled} only for SDXL. */
  public record Embeddings(Tensor hidden, Tensor pooled) {}

  /** {@code second} is SDXL's text_encoder_2, null for SD 1.x/2.x. */
  PromptEncoder(TextEncoder first, TextEncoder second, boolean forceZerosForEmptyPrompt) {
    this.first = first;
    this.second = second;
    this.forceZerosForEmptyPrompt = forceZerosForEmptyPrompt;
  }

  private boolean xl() {
    return second != null;
  }

  /** The conditioning width the UNet sees (both encoders' widths for SDXL). */
  int hiddenWidth() {
    return first.hiddenWidth() + (second == null ? 0 : second.hiddenWidth());
  }

  Embeddings encode(String prompt, String negative, int clipSkip, boolean guided, int batch, StageTimings timings, List<String> notes) {
    noteTruncation("prompt", prompt, notes);
    if (guided) {
      noteTruncation("negative prompt", negative, notes);
    }
    Tensor[] positive = encodeOne(prompt, clipSkip, timings, false);
    Tensor hidden = positive[0].repeat(batch);
    Tensor pooled = positive[1] == null ? null : positive[1].repeat(batch);
    if (guided) {
      boolean zeros = xl() && negative.isEmpty() && forceZerosForEmptyPrompt;
      Tensor[] unconditional = encodeOne(negative, clipSkip, timings, zeros);
      hidden = Tensor.concatenate(List.of(unconditional[0].repeat(batch), hidden));
      if (pooled != null) {
        pooled = Tensor.concatenate(List.of(unconditional[1].repeat(batch), pooled));
      }
    }
    return new Embeddings(hidden, pooled);
  }

  /** CLIP reads 77 tokens (75 and start/end); the rest of a longer prompt is dropped, and the user is told what. */
  private void noteTruncation(String which, String prompt, List<String> notes) {
    ClipTokenizer tokenizer = first.tokenizer();
    List<Integer> content = tokenizer.contentIds(prompt);
    int room = tokenizer.maxLength() - 2;
    if (content.size() > room) {
      String dropped = tokenizer.decode(content.subList(room, content.size()));
      notes.add("the " + which + " is " + content.size() + " tokens; the text encoder reads the first " + room + ", so \""
          + (dropped.length() > 200 ? dropped.substring(0, 197) + "..." : dropped) + "\" was dropped");
    }
  }

  /** {hidden [1, T, D], pooled [1, P] or null}; SDXL concatenates both encoders' hidden states along D. */
  private Tensor[] encodeOne(String prompt, int clipSkip, StageTimings timings, boolean zeros) {
    if (!xl()) {
      return new Tensor[] {first.encode(prompt, clipSkip, false, timings).hidden(), null};
    }
    TextEncoder.Encoded firstEncoded = first.encode(prompt, clipSkip, true, timings);
    TextEncoder.Encoded secondEncoded = second.encode(prompt, clipSkip, true, timings);
    if (secondEncoded.pooled() == null) {
      throw new KilnException.Unsupported("SDXL text_encoder_2 exports no text_embeds output");
    }
    Tensor hidden = concatenateLastAxis(firstEncoded.hidden(), secondEncoded.hidden());
    Tensor pooled = secondEncoded.pooled();
    if (zeros) {
      hidden = new Tensor(new float[hidden.data().length], hidden.shape());
      pooled = new Tensor(new float[pooled.data().length], pooled.shape());
    }
    return new Tensor[] {hidden, pooled};
  }

  private static Tensor concatenateLastAxis(Tensor left, Tensor right) {
    int rows = (int) (left.data().length / left.dimension(-1));
    int leftWidth = (int) left.dimension(-1);
    int rightWidth = (int) right.dimension(-1);
    if (rows != right.data().length / rightWidth) {
      throw new KilnException.Unsupported("SDXL text encoders disagree on sequence length: " + java.util.Arrays.toString(left.shape())
          + " vs " + java.util.Arrays.toString(right.shape()));
    }
    float[] data = new float[rows * (leftWidth + rightWidth)];
    for (int row = 0; row < rows; row++) {
      System.arraycopy(left.data(), row * leftWidth, data, row * (leftWidth + rightWidth), leftWidth);
      System.arraycopy(right.data(), row * rightWidth, data, row * (leftWidth + rightWidth) + leftWidth, rightWidth);
    }
    long[] shape = left.shape().clone();
    shape[shape.length - 1] = leftWidth + rightWidth;
    return new Tensor(data, shape);
  }

  @Override
  public void close() {
    try {
      first.close();
    } finally {
      if (second != null) {
        second.close();
      }
    }
  }
}
