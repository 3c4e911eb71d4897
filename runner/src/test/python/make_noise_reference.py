"""Writes torch.randn reference values for Kiln's PyTorch-compatible noise (run with /usr/bin/python3).

Each line of noise.jsonl: seed, shape, the float32 values as raw IEEE-754 bit patterns (exact comparison),
and for large shapes only a prefix/suffix plus the SHA-256 of the little-endian float32 bytes, so the whole
tensor is still checked exactly without committing megabytes.
"""
import hashlib
import json
import os
import sys

import numpy
import torch

OUT = os.path.join(os.path.dirname(__file__), "..", "resources", "reference", "noise.jsonl")

CASES = [
    (0, [1]), (0, [2]), (0, [3]), (1, [7]), (42, [15]),          # < 16: the scalar Box-Muller path
    (0, [16]), (1, [17]), (42, [31]), (7, [32]), (123, [33]),      # >= 16: the 16-wide path, with tails
    (0, [1, 4, 8, 8]), (1234, [2, 4, 5, 7]), (2**32 + 5, [1, 4, 3, 3]),
    (0, [1, 4, 64, 64]), (42, [2, 4, 96, 64]), (4294967295, [1, 4, 128, 128]),
]
FULL_LIMIT = 512


def bits(values):
    return [int(b) for b in values.astype(numpy.float32).view(numpy.uint32)]


def main():
    lines = []
    for seed, shape in CASES:
        generator = torch.Generator("cpu").manual_seed(seed)
        tensor = torch.randn(shape, generator=generator).numpy().reshape(-1)
        # What the generator gives next tells whether Java consumed the same number of draws.
        following = torch.randn([16], generator=generator).numpy()
        entry = {"seed": seed, "shape": shape, "count": int(tensor.size),
                 "sha256": hashlib.sha256(tensor.astype("<f4").tobytes()).hexdigest(),
                 "next16": bits(following)}
        if tensor.size <= FULL_LIMIT:
            entry["bits"] = bits(tensor)
        else:
            entry["head"] = bits(tensor[:32])
            entry["tail"] = bits(tensor[-32:])
        lines.append(json.dumps(entry, sort_keys=True))
    with open(OUT, "w", encoding="utf-8", newline="\n") as handle:
        handle.write("\n".join(lines) + "\n")
    print("wrote", len(lines), "cases to", os.path.normpath(OUT), "with torch", torch.__version__, file=sys.stderr)


if __name__ == "__main__":
    main()
