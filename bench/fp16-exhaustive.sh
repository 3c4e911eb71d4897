#!/usr/bin/env bash
# Exhaustive check of the fp16 conversion's float32 -> float16 step (clamp into +-[5.96e-8, 65504], round to
# nearest even, NaN kept): all 2^32 float32 bit patterns against an independent oracle written from the definition
# and against the first implementation (HalfFloats.toFloat16 of the clamped value), values and clamp counts.
# Minutes of CPU, so not in the suite (HalfTensorsTest checks every float16 value's neighbourhood and random samples).
# Usage: bench/fp16-exhaustive.sh     prints one line; exit 1 on any mismatch
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
./kiln --help >/dev/null   # builds the CLI jar and its classpath file
mvn -B -q -o -pl optimizer -am test-compile >&2
java -cp "optimizer/target/test-classes:optimizer/target/classes:$(cat cli/target/classpath.txt)" \
  dev.kiln.optimizer.precision.HalfExhaustiveCheck
