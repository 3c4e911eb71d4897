package dev.kiln.runner.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.common.KilnException;
import dev.kiln.runner.config.JsonConfig;
import java.io.BufferedReader;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * CLIP's byte-level BPE tokenizer, read from a pipeline's {@code tokenizer/} folder (vocab.json, merges.txt,
 * tokenizer_config.json). Text is NFC-normalised, whitespace runs become one space, lower-cased, split by
 * CLIP's pre-tokenizer pattern, each piece mapped byte-wise to symbols and merged by rank. The result is
 * start + at most (length - 2) content tokens + end, padded to the model length with the configured pad
 * token (SD 1.x pads with the end token, SD 2's and SDXL's second tokenizer with "!", id 0).
 */
public final class ClipTokenizer {
  private static final Pattern WHITESPACE = Pattern.compile("\\s+", Pattern.UNICODE_CHARACTER_CLASS);
  private static final Pattern PIECES = Pattern.compile(
      "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+",
      Pattern.CASE_INSENSITIVE | Pattern.UNICODE_CHARACTER_CLASS);
  private static final String WORD_END = "</w>";
  private static final int CACHE_LIMIT = 20_000;

  private final Map<String, Integer> vocabulary;
  private final Map<String, Integer> mergeRanks;
  private final Map<String, int[]> cache = new ConcurrentHashMap<>();
  private final int startId;
  private final int endId;
  private final int padId;
  private final int maxLength;
  private final boolean lowerCase;
  /** id -> token, built on the first {@link #decode}; a benign race builds equal maps. */
  private volatile Map<Integer, String> inverse;

  private ClipTokenizer(Map<String, Integer> vocabulary, Map<String, Integer> mergeRanks, String start, String end, String pad,
      int maxLength, boolean lowerCase, Path folder) {
    this.vocabulary = vocabulary;
    this.mergeRanks = mergeRanks;
    this.startId = idOf(start, folder);
    this.endId = idOf(end, folder);
    this.padId = idOf(pad, folder);
    this.maxLength = maxLength;
    this.lowerCase = lowerCase;
  }

  private int idOf(String token, Path folder) {
    Integer id = vocabulary.get(token);
    if (id == null) {
      throw new KilnException.BadInput("tokenizer " + folder + ": special token '" + token + "' is not in vocab.json");
    }
    return id;
  }

  /** Loads the tokenizer in {@code folder}; missing or malformed files are bad input naming the file. */
  public static ClipTokenizer load(Path folder) {
    Path vocabularyFile = folder.resolve("vocab.json");
    Path mergesFile = folder.resolve("merges.txt");
    for (Path required : List.of(vocabularyFile, mergesFile)) {
      if (!Files.isRegularFile(required)) {
        throw new KilnException.BadInput("missing tokenizer file " + required);
      }
    }
    ObjectMapper mapper = new ObjectMapper();
    Map<String, Integer> vocabulary = new HashMap<>();
    try {
      JsonNode json = mapper.readTree(vocabularyFile.toFile());
      if (json == null || !json.isObject()) {
        throw new KilnException.BadInput("tokenizer vocabulary " + vocabularyFile + " is not a JSON object of token -> id");
      }
      for (Iterator<Map.Entry<String, JsonNode>> fields = json.fields(); fields.hasNext(); ) {
        Map.Entry<String, JsonNode> field = fields.next();
        if (!field.getValue().canConvertToInt()) {
          throw new KilnException.BadInput("tokenizer vocabulary " + vocabularyFile + ": id of '" + field.getKey() + "' is not an integer");
        }
        vocabulary.put(field.getKey(), field.getValue().intValue());
      }
    } catch (IOException e) {
      throw new KilnException.BadInput("cannot read tokenizer vocabulary " + vocabularyFile + ": "
          + String.valueOf(e.getMessage()).lines().findFirst().orElse(""), e);
    }
    Map<String, Integer> ranks = new HashMap<>();
    try (BufferedReader reader = Files.newBufferedReader(mergesFile, StandardCharsets.UTF_8)) {
      String line;
      int lineNumber = 0;
      while ((line = reader.readLine()) != null) {
        lineNumber++;
        if (line.startsWith("#version") || line.isBlank()) {
          continue;
        }
        String[] pair = line.trim().split(" ");
        if (pair.length != 2) {
          throw new KilnException.BadInput("tokenizer merges " + mergesFile + " line " + lineNumber + ": expected two symbols, got '" + line + "'");
        }
        ranks.putIfAbsent(pair[0] + " " + pair[1], ranks.size());
      }
    } catch (IOException e) {
      throw new KilnException.BadInput("cannot read tokenizer merges " + mergesFile + ": " + e.getMessage(), e);
    }
    String start = "<|startoftext|>";
    String end = "<|endoftext|>";
    String pad = end;
    int maxLength = 77;
    boolean lowerCase = true;
    Path configFile = folder.resolve("tokenizer_config.json");
    if (Files.isRegularFile(configFile)) {
      JsonConfig config = JsonConfig.read(configFile, true);
      start = tokenText(config.node().get("bos_token"), start);
      end = tokenText(config.node().get("eos_token"), end);
      pad = tokenText(config.node().get("pad_token"), end);
      // HF writes a huge sentinel (1e30) when no length was set; CLIP's position table is 77 long.
      double length = config.number("model_max_length", 77, 0, Double.MAX_VALUE);
      maxLength = length >= 2 && length <= 4096 ? (int) length : 77;
      lowerCase = config.bool("do_lower_case", true);
    }
    return new ClipTokenizer(vocabulary, ranks, start, end, pad, maxLength, lowerCase, folder);
  }

  private static String tokenText(JsonNode node, String fallback) {
    if (node == null || node.isNull()) {
      return fallback;
    }
    if (node.isTextual()) {
      return node.asText();
    }
    return node.path("content").asText(fallback);
  }

  public int maxLength() {
    return maxLength;
  }

  public int padId() {
    return padId;
  }

  public int endId() {
    return endId;
  }

  /**
   * The text of content token ids (what a truncated prompt lost): symbols mapped back to bytes, word ends to
   * spaces, as CLIP's decoder does; lower-cased and whitespace-normalised like the tokenizer's input.
   */
  public String decode(List<Integer> ids) {
    if (inverse == null) {
      Map<Integer, String> tokens = new HashMap<>();
      vocabulary.forEach((token, id) -> tokens.put(id, token));
      inverse = tokens;
    }
    java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
    for (int id : ids) {
      String token = inverse.getOrDefault(id, "");
      boolean wordEnd = token.endsWith(WORD_END);
      String symbols = wordEnd ? token.substring(0, token.length() - WORD_END.length()) : token;
      for (int index = 0; index < symbols.length(); index++) {
        int value = ByteSymbols.valueOf(symbols.charAt(index));
        if (value >= 0) {
          bytes.write(value);
        }
      }
      if (wordEnd) {
        bytes.write(' ');
      }
    }
    return bytes.toString(StandardCharsets.UTF_8).strip();
  }

  /** Tokenizes a prompt: ids with start/end, truncated to the model length, and the padded row. */
  public TokenizedPrompt encode(String prompt) {
    List<Integer> content = contentIds(prompt);
    int room = maxLength - 2;
    boolean truncated = content.size() > room;
    int kept = Math.min(room, content.size());
    int[] ids = new int[kept + 2];
    ids[0] = startId;
    for (int index = 0; index < kept; index++) {
      ids[index + 1] = content.get(index);
    }
    ids[kept + 1] = endId;
    long[] padded = new long[maxLength];
    java.util.Arrays.fill(padded, padId);
    for (int index = 0; index < ids.length; index++) {
      padded[index] = ids[index];
    }
    return new TokenizedPrompt(ids, content.size(), truncated, padded);
  }

  /** The content token ids of the whole prompt, without start/end and without truncation. */
  public List<Integer> contentIds(String prompt) {
    String text = Normalizer.normalize(prompt, Normalizer.Form.NFC);
    text = WHITESPACE.matcher(text).replaceAll(" ").strip();
    if (lowerCase) {
      text = text.toLowerCase(Locale.ROOT);
    }
    List<Integer> ids = new ArrayList<>();
    Matcher matcher = PIECES.matcher(text);
    while (matcher.find()) {
      String piece = matcher.group();
      Integer special = piece.startsWith("<|") ? vocabulary.get(piece) : null;
      if (special != null) {
        ids.add(special);
        continue;
      }
      for (int id : pieceIds(piece)) {
        ids.add(id);
      }
    }
    return ids;
  }

  private int[] pieceIds(String piece) {
    int[] cached = cache.get(piece);
    if (cached != null) {
      return cached;
    }
    byte[] bytes = piece.getBytes(StandardCharsets.UTF_8);
    List<String> word = new ArrayList<>(bytes.length);
    for (byte value : bytes) {
      word.add(ByteSymbols.of(value));
    }
    word.set(word.size() - 1, word.get(word.size() - 1) + WORD_END);
    merge(word);
    int[] ids = new int[word.size()];
    for (int index = 0; index < ids.length; index++) {
      Integer id = vocabulary.get(word.get(index));
      if (id == null) {
        // Every byte symbol is in a CLIP vocabulary; a missing one means a truncated vocab.json.
        throw new KilnException.BadInput("tokenizer vocabulary has no entry for symbol '" + word.get(index) + "' of '" + piece + "'");
      }
      ids[index] = id;
    }
    if (cache.size() >= CACHE_LIMIT) {
      cache.clear();
    }
    cache.put(piece, ids);
    return ids;
  }

  /** Repeatedly merges every occurrence of the lowest-ranked adjacent pair until no pair has a rank. */
  private void merge(List<String> word) {
    while (word.size() > 1) {
      int bestRank = Integer.MAX_VALUE;
      String first = null;
      String second = null;
      for (int index = 0; index + 1 < word.size(); index++) {
        Integer rank = mergeRanks.get(word.get(index) + " " + word.get(index + 1));
        if (rank != null && rank < bestRank) {
          bestRank = rank;
          first = word.get(index);
          second = word.get(index + 1);
        }
      }
      if (first == null) {
        return;
      }
      List<String> merged = new ArrayList<>(word.size());
      for (int index = 0; index < word.size(); index++) {
        if (index + 1 < word.size() && word.get(index).equals(first) && word.get(index + 1).equals(second)) {
          merged.add(first + second);
          index++;
        } else {
          merged.add(word.get(index));
        }
      }
      word.clear();
      word.addAll(merged);
    }
  }
}
