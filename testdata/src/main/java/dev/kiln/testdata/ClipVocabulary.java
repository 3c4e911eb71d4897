package dev.kiln.testdata;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;
import java.util.zip.GZIPInputStream;

/**
 * OpenAI's CLIP vocabulary as the Hugging Face tokenizer files SD pipelines ship ({@code vocab.json},
 * {@code merges.txt}), derived from the committed original {@code testdata/clip-tokenizer/bpe_simple_vocab_16e6.txt.gz}
 * (MIT, licence beside it). Tests get real-vocabulary token ids without anything outside the repository.
 *
 * <p>The construction is CLIP's own ({@code simple_tokenizer.py}): the 256 byte-to-unicode symbols, the same 256
 * with {@code </w>}, then one token per merge (lines 1..48894 of the file, the pair joined), then
 * {@code <|startoftext|>} and {@code <|endoftext|>}: 49408 tokens. {@code merges.txt} is the {@code #version: 0.2}
 * header and those 48894 merge lines. Both files come out byte for byte as transformers writes them.
 */
public final class ClipVocabulary {
  /** Merge lines CLIP uses: {@code merges[1:49152-256-2+1]} in simple_tokenizer.py. */
  public static final int MERGES = 49152 - 256 - 2;
  public static final int VOCABULARY_SIZE = 256 + 256 + MERGES + 2;

  private static Path derived;

  private ClipVocabulary() {}

  /** The committed folder: the .gz, its LICENSE and examples.jsonl (prompt -> ids from transformers). */
  public static Path source() {
    Path folder = Fixtures.testdata().resolve("clip-tokenizer");
    if (!Files.isRegularFile(folder.resolve("bpe_simple_vocab_16e6.txt.gz"))) {
      throw new IllegalStateException(folder.resolve("bpe_simple_vocab_16e6.txt.gz") + " is missing from the checkout");
    }
    return folder;
  }

  /** The committed prompt -> ids examples. */
  public static Path examples() {
    return source().resolve("examples.jsonl");
  }

  /**
   * A tokenizer folder with {@code vocab.json} and {@code merges.txt} derived from the .gz, made once per JVM in a
   * temporary folder that is removed when the JVM exits.
   */
  public static synchronized Path tokenizerFolder() {
    if (derived == null) {
      try {
        Path folder = Files.createTempDirectory("kiln-clip-vocabulary-");
        Runtime.getRuntime().addShutdownHook(new Thread(() -> deleteTree(folder)));
        writeTokenizerFiles(source().resolve("bpe_simple_vocab_16e6.txt.gz"), folder);
        derived = folder;
      } catch (IOException e) {
        throw new UncheckedIOException("cannot derive the CLIP tokenizer files", e);
      }
    }
    return derived;
  }

  /** Writes {@code vocab.json} and {@code merges.txt} for the BPE file {@code gz} into {@code folder}. */
  public static void writeTokenizerFiles(Path gz, Path folder) throws IOException {
    List<String> merges = mergeLines(gz);
    List<String> vocabulary = new ArrayList<>(VOCABULARY_SIZE);
    List<String> byteSymbols = byteSymbols();
    vocabulary.addAll(byteSymbols);
    byteSymbols.forEach(symbol -> vocabulary.add(symbol + "</w>"));
    merges.forEach(merge -> vocabulary.add(merge.replace(" ", "")));
    vocabulary.add("<|startoftext|>");
    vocabulary.add("<|endoftext|>");

    // transformers' save_vocabulary: compact JSON in id order, UTF-8 unescaped, no trailing newline.
    StringBuilder json = new StringBuilder(900_000).append('{');
    for (int id = 0; id < vocabulary.size(); id++) {
      if (id > 0) {
        json.append(',');
      }
      appendJsonString(json, vocabulary.get(id));
      json.append(':').append(id);
    }
    json.append('}');
    Files.writeString(folder.resolve("vocab.json"), json, StandardCharsets.UTF_8);

    StringBuilder text = new StringBuilder(600_000).append("#version: 0.2\n");
    merges.forEach(merge -> text.append(merge).append('\n'));
    Files.writeString(folder.resolve("merges.txt"), text, StandardCharsets.UTF_8);
  }

  /** Lines 1..48894 of the BPE file (line 0 is its header). */
  static List<String> mergeLines(Path gz) throws IOException {
    String content;
    try (InputStream in = new GZIPInputStream(Files.newInputStream(gz))) {
      content = new String(in.readAllBytes(), StandardCharsets.UTF_8);
    }
    String[] lines = content.split("\n", -1);
    if (lines.length <= MERGES) {
      throw new IllegalStateException(gz + ": " + lines.length + " lines, CLIP needs at least " + (MERGES + 1));
    }
    List<String> merges = new ArrayList<>(MERGES);
    for (int line = 1; line <= MERGES; line++) {
      merges.add(lines[line]);
    }
    return merges;
  }

  /**
   * GPT-2/CLIP's bytes_to_unicode in its insertion order: the printable bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') map
   * to themselves, every other byte to U+0100 onwards in byte order.
   */
  static List<String> byteSymbols() {
    List<Integer> printable = new ArrayList<>();
    for (int b = '!'; b <= '~'; b++) {
      printable.add(b);
    }
    for (int b = 0xA1; b <= 0xAC; b++) {
      printable.add(b);
    }
    for (int b = 0xAE; b <= 0xFF; b++) {
      printable.add(b);
    }
    List<String> symbols = new ArrayList<>(256);
    printable.forEach(b -> symbols.add(Character.toString(b)));
    int next = 0;
    for (int b = 0; b < 256; b++) {
      if (!printable.contains(b)) {
        symbols.add(Character.toString(256 + next++));
      }
    }
    return symbols;
  }

  private static void appendJsonString(StringBuilder json, String value) {
    json.append('"');
    for (int index = 0; index < value.length(); index++) {
      char c = value.charAt(index);
      if (c == '"' || c == '\\') {
        json.append('\\').append(c);
      } else if (c < 0x20) {
        json.append(String.format("\\u%04x", (int) c));
      } else {
        json.append(c);
      }
    }
    json.append('"');
  }

  private static void deleteTree(Path root) {
    try (Stream<Path> paths = Files.walk(root)) {
      paths.sorted(Comparator.reverseOrder()).forEach(path -> path.toFile().delete());
    } catch (IOException ignored) {
      // Best effort at exit; the folder is in the temporary directory.
    }
  }
}
