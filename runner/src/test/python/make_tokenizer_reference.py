"""Independent CLIP tokenizer reference for Kiln's Java tokenizer tests (run with /usr/bin/python3).

Builds the vocabulary straight from OpenAI's original `bpe_simple_vocab_16e6.txt.gz` (not from the
vocab.json the Java code reads), pre-tokenizes with a hand-written scanner that follows CLIP's regex
alternation order with Unicode categories (letters L*, numbers N*), and runs byte-level BPE. Writes
tokenizer_cases.jsonl: prompt -> ids (start, at most 75 content tokens, end) and the untruncated count.
Text cleanup follows CLIP minus ftfy: NFC normalisation (ftfy's default), whitespace runs -> one space,
strip, lower case.
"""
import gzip
import json
import os
import sys
import unicodedata

SHARED = os.environ.get("KILN_SHARED", os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "..", "shared"))
OUT = os.path.join(os.path.dirname(__file__), "..", "resources", "reference", "tokenizer_cases.jsonl")
SPECIALS = ["<|startoftext|>", "<|endoftext|>"]
CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"]

CASES = [
    "",
    "a photo of a cat, trending on artstation!!!",
    "The year 2024: 3.14159 apples & 42 oranges (approx.)",
    "don't you're we'll they've I'm she'd it's",
    "DON'T SHOUT, it'S fine",
    "café crème brûlée, naïve façade, Ångström",
    "ÀÉÎÕÜ ünïcödé",
    "a cute cat 🐱 riding a rocket 🚀✨ to the moon 🌕",
    "   multiple    spaces\tand\nnewlines  everywhere   ",
    "hyphen-ated words, (parentheses), [brackets], {braces} and \"quotes\"",
    "masterpiece, best quality, ((ultra detailed)), 8k uhd, dslr",
    "日本語のテキスト and 中文 words",
    "snake_case and #hashtag @mention 100% $5",
    "a red circle on a white background",
    "<|startoftext|>a special token inside<|endoftext|>",
    "x" * 300,
    " ".join(["a beautiful painting of a mountain lake at sunrise"] * 12),
    "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen "
    "eighteen nineteen twenty twentyone twentytwo twentythree twentyfour twentyfive twentysix twentyseven "
    "twentyeight twentynine thirty thirtyone thirtytwo thirtythree thirtyfour thirtyfive thirtysix thirtyseven "
    "thirtyeight thirtynine forty fortyone fortytwo fortythree fortyfour fortyfive fortysix fortyseven",
]


def byte_symbols():
    kept = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    table = {}
    shifted = 0
    for value in range(256):
        if value in kept:
            table[value] = chr(value)
        else:
            table[value] = chr(256 + shifted)
            shifted += 1
    return table


def load_vocabulary():
    with gzip.open(os.path.join(SHARED, "clip-tokenizer", "bpe_simple_vocab_16e6.txt.gz"), "rt", encoding="utf-8") as handle:
        lines = handle.read().split("\n")
    merges = [tuple(line.split()) for line in lines[1:49152 - 256 - 2 + 1]]
    symbols = byte_symbols()
    base = [symbols[value] for value in sorted(symbols, key=lambda v: ord(symbols[v]))]
    # Byte symbols in CLIP's id order: the order bytes_to_unicode lists them (kept bytes first).
    kept = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    base = [symbols[value] for value in kept] + [symbols[value] for value in range(256) if value not in kept]
    tokens = base + [symbol + "</w>" for symbol in base] + ["".join(merge) for merge in merges] + SPECIALS
    return {token: index for index, token in enumerate(tokens)}, {merge: rank for rank, merge in enumerate(merges)}


def category(character):
    kind = unicodedata.category(character)
    if kind.startswith("L"):
        return "letter"
    if kind.startswith("N"):
        return "number"
    if character.isspace():
        return "space"
    return "other"


def pre_tokenize(text):
    pieces = []
    position = 0
    while position < len(text):
        matched = None
        for special in SPECIALS:
            if text.startswith(special, position):
                matched = special
                break
        if matched is None:
            for contraction in CONTRACTIONS:
                if text.startswith(contraction, position):
                    matched = contraction
                    break
        if matched is None:
            kind = category(text[position])
            if kind == "space":
                position += 1
                continue
            end = position + 1
            if kind in ("letter", "other"):
                while end < len(text) and category(text[end]) == kind:
                    end += 1
            matched = text[position:end]
        pieces.append(matched)
        position += len(matched)
    return pieces


def bpe(token, ranks):
    word = list(token[:-1]) + [token[-1] + "</w>"]
    while len(word) > 1:
        pairs = [(ranks.get((word[i], word[i + 1]), None), i) for i in range(len(word) - 1)]
        candidates = [pair for pair in pairs if pair[0] is not None]
        if not candidates:
            break
        best_rank = min(candidates)[0]
        first, second = word[min(candidates)[1]], word[min(candidates)[1] + 1]
        merged = []
        i = 0
        while i < len(word):
            if i < len(word) - 1 and word[i] == first and word[i + 1] == second:
                merged.append(first + second)
                i += 2
            else:
                merged.append(word[i])
                i += 1
        word = merged
    return word


def encode(text, vocabulary, ranks):
    symbols = byte_symbols()
    cleaned = " ".join(unicodedata.normalize("NFC", text).split()).lower()
    ids = []
    for piece in pre_tokenize(cleaned):
        if piece in SPECIALS:
            ids.append(vocabulary[piece])
            continue
        mapped = "".join(symbols[b] for b in piece.encode("utf-8"))
        ids.extend(vocabulary[part] for part in bpe(mapped, ranks))
    return ids


def main():
    vocabulary, ranks = load_vocabulary()
    with open(os.path.join(SHARED, "clip-tokenizer", "examples.jsonl"), encoding="utf-8") as handle:
        for line in handle:
            example = json.loads(line)
            got = [49406] + encode(example["prompt"], vocabulary, ranks) + [49407]
            assert got == example["ids"], (example, got)
    lines = []
    for prompt in CASES:
        content = encode(prompt, vocabulary, ranks)
        ids = [49406] + content[:75] + [49407]
        lines.append(json.dumps({"prompt": prompt, "ids": ids, "content_count": len(content)}, ensure_ascii=False))
    with open(OUT, "w", encoding="utf-8", newline="\n") as handle:
        handle.write("\n".join(lines) + "\n")
    print("shared examples agree; wrote", len(lines), "cases", file=sys.stderr)


if __name__ == "__main__":
    main()
