package dev.kiln.runner.tokenizer;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.kiln.common.KilnException;
import dev.kiln.testdata.Fixtures;
import dev.kiln.testdata.FuzzFolder;
import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * Fuzz targets for the CLIP tokenizer. {@link #folder} fuzzes the files a pipeline's {@code tokenizer/} folder
 * holds (input sections split at NUL bytes: vocab.json, merges.txt, tokenizer_config.json, then a prompt to
 * encode; a missing section is a missing file). {@link #prompt} encodes arbitrary text with the committed CLIP
 * tokenizer fixture: the input as UTF-8 and as UTF-16 code units (lone surrogates included), and checks the
 * shape of the result. Only a {@link KilnException} may come out. How targets are run and added: see
 * {@code bench/fuzz.sh}.
 */
class ClipTokenizerFuzzTest {
  private static final FuzzFolder FOLDER = FuzzFolder.create("tokenizer");
  private static final ClipTokenizer FIXTURE = ClipTokenizer.load(Fixtures.testdata().resolve("fixtures/tokenizer"));

  @FuzzTest(maxDuration = "10m")
  void folder(byte[] input) {
    FOLDER.reset();
    List<byte[]> sections = FuzzFolder.sections(input, 4);
    FOLDER.write("vocab.json", sections.get(0));
    FOLDER.write("merges.txt", sections.get(1));
    FOLDER.write("tokenizer_config.json", sections.get(2));
    try {
      ClipTokenizer tokenizer = ClipTokenizer.load(FOLDER.root());
      byte[] prompt = sections.get(3);
      checkEncoding(tokenizer, prompt == null ? "a red circle" : new String(prompt, StandardCharsets.UTF_8));
    } catch (KilnException expected) {
      // The contract: a tokenizer folder Kiln cannot use is refused with a typed error.
    }
  }

  @FuzzTest(maxDuration = "10m")
  void prompt(byte[] input) {
    try {
      checkEncoding(FIXTURE, new String(input, StandardCharsets.UTF_8));
      checkEncoding(FIXTURE, new String(input, StandardCharsets.UTF_16LE));
    } catch (KilnException expected) {
      // A prompt is never bad input today; if one becomes refusable, it must be refused with a typed error.
    }
  }

  /** start + content (truncated) + end, padded to the model length; the count is the untruncated content. */
  private static void checkEncoding(ClipTokenizer tokenizer, String prompt) {
    TokenizedPrompt encoded = tokenizer.encode(prompt);
    int[] ids = encoded.ids();
    long[] padded = encoded.padded();
    if (padded.length != tokenizer.maxLength() || ids.length > tokenizer.maxLength() || ids.length < 2
        || ids[ids.length - 1] != tokenizer.endId()) {
      throw new AssertionError("malformed encoding of " + prompt.length() + " chars: " + ids.length + " ids, "
          + padded.length + " padded, model length " + tokenizer.maxLength());
    }
    if (encoded.truncated() != (encoded.contentCount() > tokenizer.maxLength() - 2)) {
      throw new AssertionError("truncation flag disagrees with the content count " + encoded.contentCount());
    }
  }
}
