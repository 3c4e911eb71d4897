"""Builds and applies a CLIP-format byte-level BPE tokenizer for a small caption vocabulary.

This is the one tokenizer builder of Kiln's fixture generators: the tiny trained pipeline
(testdata/tiny) and the random-weight fixture generator (testdata/generator) both import it, so every
tokenizer folder Kiln ships has exactly the layout of SD 1.x's `tokenizer/` folder:

  vocab.json               token -> id; ids 0..255 are the 256 byte symbols, 256..511 the same with a
                           `</w>` word end, then one id per merge, then <|startoftext|>, <|endoftext|>
                           (the same ordering as OpenAI's CLIP vocabulary, only with fewer merges)
  merges.txt               `#version: 0.2` header, then one merge per line ("a b" or "a b</w>"), rank order
  tokenizer_config.json    CLIPTokenizer, model_max_length 77, lower-casing, pad with <|endoftext|> (SD 1.x)
  special_tokens_map.json  bos/eos/unk/pad

Merges are learned greedily (most frequent adjacent pair first, ties broken by the pair's text) until every
word of the corpus is one token, so a caption from the corpus tokenizes to one id per word, like real CLIP
does for common English words. Words outside the corpus still tokenize (down to single bytes), never to <unk>.

Usage as a module:   from kiln_sd.clip_bpe import build_tokenizer, ClipBpeTokenizer
Usage as a script:   /usr/bin/python3 clip_bpe.py OUT_DIR "a red circle" "a blue square" ...
"""

import collections
import json
import os
import re
import sys

MODEL_MAX_LENGTH = 77
START_OF_TEXT = "<|startoftext|>"
END_OF_TEXT = "<|endoftext|>"
WORD_END = "</w>"

# CLIP's pre-tokenizer regex uses \p{L} and \p{N}; Python's `re` lacks those classes, so letters are written
# as "word characters that are not digits or underscore" and numbers as single digits, which matches CLIP on
# every caption Kiln generates (ASCII text).
_PRE_TOKENIZER = re.compile(
    r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[^\W\d_]+|\d|[^\s\w]+|_",
    re.IGNORECASE,
)


def bytes_to_unicode():
    """CLIP/GPT-2's reversible byte -> printable character table (the 256 base symbols, in id order)."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("\u00a1"), ord("\u00ac") + 1))
                 + list(range(ord("\u00ae"), ord("\u00ff") + 1)))
    byte_values = printable[:]
    code_points = printable[:]
    extra = 0
    for value in range(256):
        if value not in byte_values:
            byte_values.append(value)
            code_points.append(256 + extra)
            extra += 1
    return dict(zip(byte_values, [chr(c) for c in code_points]))


_BYTE_ENCODER = bytes_to_unicode()


def clean_text(text):
    """CLIP's normalisation: collapse whitespace, strip, lower-case."""
    return re.sub(r"\s+", " ", text).strip().lower()


def pre_tokenize(text):
    """Splits cleaned text into CLIP pre-tokens, each mapped to byte symbols."""
    return ["".join(_BYTE_ENCODER[b] for b in token.encode("utf-8"))
            for token in _PRE_TOKENIZER.findall(clean_text(text))]


def _word_symbols(token):
    return tuple(token[:-1]) + (token[-1] + WORD_END,)


def _corpus_words(words_or_corpus):
    """Accepts one string (a corpus), or an iterable of words / captions; returns pre-token frequencies."""
    if isinstance(words_or_corpus, str):
        texts = [words_or_corpus]
    else:
        texts = list(words_or_corpus)
    counts = collections.Counter()
    for text in texts:
        for token in pre_tokenize(text):
            if token in (START_OF_TEXT, END_OF_TEXT):
                continue
            counts[token] += 1
    if not counts:
        raise ValueError("tokenizer corpus has no words")
    return counts


def learn_merges(words_or_corpus, max_merges=None):
    """Greedy BPE: merge the most frequent adjacent pair (ties: smallest pair text) until no pair is left."""
    frequencies = _corpus_words(words_or_corpus)
    words = {token: list(_word_symbols(token)) for token in sorted(frequencies)}
    merges = []
    while max_merges is None or len(merges) < max_merges:
        pair_counts = collections.Counter()
        for token, symbols in words.items():
            for left, right in zip(symbols, symbols[1:]):
                pair_counts[(left, right)] += frequencies[token]
        if not pair_counts:
            break
        best = min(pair_counts.items(), key=lambda item: (-item[1], item[0]))[0]
        merges.append(best)
        merged = best[0] + best[1]
        for token, symbols in words.items():
            index = 0
            rebuilt = []
            while index < len(symbols):
                if index + 1 < len(symbols) and symbols[index] == best[0] and symbols[index + 1] == best[1]:
                    rebuilt.append(merged)
                    index += 2
                else:
                    rebuilt.append(symbols[index])
                    index += 1
            words[token] = rebuilt
    return merges


def vocabulary_for(merges):
    base = list(_BYTE_ENCODER.values())
    tokens = base + [symbol + WORD_END for symbol in base]
    tokens += [left + right for left, right in merges]
    tokens += [START_OF_TEXT, END_OF_TEXT]
    vocabulary = {}
    for token in tokens:
        if token in vocabulary:
            raise ValueError("duplicate vocabulary token " + repr(token))
        vocabulary[token] = len(vocabulary)
    return vocabulary


def _write_text(path, text):
    temporary = path + ".tmp"
    with open(temporary, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)
    os.replace(temporary, path)


def tokenizer_config():
    special = {"__type": "AddedToken", "lstrip": False, "normalized": True, "rstrip": False,
               "single_word": False}
    return {
        "add_prefix_space": False,
        "bos_token": dict(special, content=START_OF_TEXT),
        "do_lower_case": True,
        "eos_token": dict(special, content=END_OF_TEXT),
        "errors": "replace",
        "model_max_length": MODEL_MAX_LENGTH,
        "pad_token": END_OF_TEXT,
        "tokenizer_class": "CLIPTokenizer",
        "unk_token": dict(special, content=END_OF_TEXT),
    }


def special_tokens_map():
    return {"bos_token": START_OF_TEXT, "eos_token": END_OF_TEXT, "pad_token": END_OF_TEXT,
            "unk_token": END_OF_TEXT}


def build_tokenizer(words_or_corpus, out_dir, max_merges=None):
    """Learns merges from the corpus and writes the four tokenizer files into out_dir (byte-identical for
    the same corpus). Returns a ClipBpeTokenizer over the written files."""
    merges = learn_merges(words_or_corpus, max_merges)
    vocabulary = vocabulary_for(merges)
    os.makedirs(out_dir, exist_ok=True)
    _write_text(os.path.join(out_dir, "vocab.json"), json.dumps(vocabulary, ensure_ascii=False) + "\n")
    _write_text(os.path.join(out_dir, "merges.txt"),
                "#version: 0.2\n" + "".join(left + " " + right + "\n" for left, right in merges))
    _write_text(os.path.join(out_dir, "tokenizer_config.json"),
                json.dumps(tokenizer_config(), indent=2, sort_keys=True) + "\n")
    _write_text(os.path.join(out_dir, "special_tokens_map.json"),
                json.dumps(special_tokens_map(), indent=2, sort_keys=True) + "\n")
    return ClipBpeTokenizer(out_dir)


class ClipBpeTokenizer:
    """Applies a CLIP-format tokenizer folder exactly as CLIPTokenizer does for SD 1.x prompts."""

    def __init__(self, folder):
        with open(os.path.join(folder, "vocab.json"), encoding="utf-8") as handle:
            self.vocabulary = json.load(handle)
        with open(os.path.join(folder, "merges.txt"), encoding="utf-8") as handle:
            lines = handle.read().split("\n")
        if not lines or not lines[0].startswith("#version"):
            raise ValueError(folder + "/merges.txt: expected a '#version: 0.2' header line")
        self.ranks = {}
        for line in lines[1:]:
            if line:
                left, right = line.split(" ")
                self.ranks[(left, right)] = len(self.ranks)
        self.merge_list = sorted(self.ranks, key=self.ranks.get)
        self.start_id = self.vocabulary[START_OF_TEXT]
        self.end_id = self.vocabulary[END_OF_TEXT]
        self.pad_id = self.end_id
        self.cache = {}

    def bpe(self, token):
        if token in self.cache:
            return self.cache[token]
        symbols = list(_word_symbols(token))
        while len(symbols) > 1:
            pairs = [(self.ranks.get(pair, float("inf")), index)
                     for index, pair in enumerate(zip(symbols, symbols[1:]))]
            rank, _ = min(pairs)
            if rank == float("inf"):
                break
            best = self.merge_list[rank]
            rebuilt = []
            index = 0
            while index < len(symbols):
                if index + 1 < len(symbols) and (symbols[index], symbols[index + 1]) == best:
                    rebuilt.append(symbols[index] + symbols[index + 1])
                    index += 2
                else:
                    rebuilt.append(symbols[index])
                    index += 1
            symbols = rebuilt
        self.cache[token] = symbols
        return symbols

    def encode(self, text):
        """Ids with <|startoftext|> and <|endoftext|>, no padding or truncation."""
        ids = [self.start_id]
        for token in pre_tokenize(text):
            if token in (START_OF_TEXT, END_OF_TEXT):
                ids.append(self.vocabulary[token])
                continue
            ids.extend(self.vocabulary[symbol] for symbol in self.bpe(token))
        ids.append(self.end_id)
        return ids

    def __call__(self, text, max_length=MODEL_MAX_LENGTH):
        """SD 1.x style: truncate to max_length keeping <|endoftext|> last, pad with <|endoftext|>."""
        ids = self.encode(text)
        if len(ids) > max_length:
            ids = ids[:max_length - 1] + [self.end_id]
        return ids + [self.pad_id] * (max_length - len(ids))


def main(arguments):
    if len(arguments) < 2:
        sys.stderr.write("usage: clip_bpe.py OUT_DIR TEXT [TEXT ...]\n")
        return 2
    tokenizer = build_tokenizer(arguments[1:], arguments[0])
    sys.stdout.write("%d tokens, %d merges\n" % (len(tokenizer.vocabulary), len(tokenizer.ranks)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
