#!/usr/bin/env bash
# Which int8 kernels ORT's CPU provider runs fastest on this machine: a conv stack and a projection-MatMul stack at
# SD 1.5's first-level sizes, as float32 (the anchor, same run), int8 with uint8 activations (u8s8, Kiln's default),
# int8 with int8 activations (s8s8, --int8-activations int8) and weights-only int8 (--int8-scheme weights); 2 ORT
# threads, interleaved rounds, median per round, best round. Prints a table with the kernels ORT selected.
# Usage: bench/int8-kernels.sh [rounds=4] [runs per round=11]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
./kiln --help >/dev/null   # builds the CLI (and its classpath file) once
mvn -B -q -o -pl optimizer -am test-compile >&2
classpath="optimizer/target/test-classes:optimizer/target/classes:$(cat cli/target/classpath.txt)"
echo "# Kiln int8 kernel benchmark — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
  "VNNI: $(grep -qw avx512_vnni /proc/cpuinfo && echo avx512_vnni || echo no), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
java -cp "$classpath" dev.kiln.optimizer.quantize.Int8KernelBench "${1:-4}" "${2:-11}"
