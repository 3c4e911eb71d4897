package dev.kiln.runner.tokenizer;

import java.util.Arrays;

/**
 * A prompt after tokenization: the ids the text encoder sees (start, content, end; at most the model's
 * length), how many content tokens the full prompt had, and the model-length row padded as the tokenizer's
 * config says.
 */
public record TokenizedPrompt(int[] ids, int contentCount, boolean truncated, long[] padded) {
  public int count() {
    return ids.length;
  }

  @Override
  public boolean equals(Object other) {
    return other instanceof TokenizedPrompt that && Arrays.equals(ids, that.ids) && Arrays.equals(padded, that.padded)
        && contentCount == that.contentCount && truncated == that.truncated;
  }

  @Override
  public int hashCode() {
    return Arrays.hashCode(ids) * 31 + Arrays.hashCode(padded);
  }

  @Override
  public String toString() {
    return "TokenizedPrompt" + Arrays.toString(ids) + (truncated ? " (truncated from " + (contentCount + 2) + ")" : "");
  }
}
