#!/usr/bin/env bash
# The precision parity matrix over every fixture pipeline (sd15, sd2, sdxl, tiny-sd): `--precision fp16` and `mixed`
# (mixed calibrated from the runner: no --calibration) for `--target cpu` and `cuda`; every output of every component
# against the float32 original under fp16-storage emulation (cuda-profile graphs lowered first), at three sizes
# (2, 3x2 and 4 times the pipeline's size multiple) x batch 1 and 2, on held-out inputs recorded from the runner.
# One row per component, size and batch: its worst output and error, and where that misses 1e-2 the first tensor that
# diverges from the float32 graph of the same target (the node to blame). Too slow for the test suite (mixed on the
# fixture UNets runs up to two dozen ORT sessions each); TinyPipelinePrecisionTest and PrecisionMatrixTest run a part.
# Usage: bench/precision-matrix.sh [PIPELINE...]      (default: sd15 sd2 sdxl tiny-sd)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
scratch="$(mktemp -d "${TMPDIR:-/tmp}/kiln-bench-precision-matrix.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
cd "$root"
mvn -B -q -o -pl optimizer -am test-compile dependency:build-classpath -Dmdep.outputFile=target/bench-classpath.txt \
  -Dmdep.includeScope=test >&2
classpath="optimizer/target/test-classes:optimizer/target/classes:$(cat optimizer/target/bench-classpath.txt)"
echo "# Kiln precision matrix — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
echo
java -Xmx8g -cp "$classpath" dev.kiln.optimizer.precision.PrecisionMatrix testdata/pipelines "$scratch" "$@"
