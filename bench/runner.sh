#!/usr/bin/env bash
# Runner benchmark: per-stage latency of the tiny pipeline (median of N runs) and one full-size SD 1.5 UNet
# step on CPU through ORT when ~/.cache/kiln/bench/sd15-unet/ exists. Prints Markdown tables.
# Usage: bench/runner.sh [RUNS] [PIPELINE_DIR]
#   env: KILN_BENCH_SIZE=512 (UNet step size), KILN_BENCH_THREADS=0 (= all cores),
#        KILN_BENCH_PIPELINE_SIZE=0 (pipeline image size; 0 = the pipeline's default, 64 for the tiny one)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runs="${1:-5}"
pipeline="${2:-$root/testdata/pipelines/tiny-sd}"
unet="${KILN_BENCH_UNET:-$HOME/.cache/kiln/bench/sd15-unet}"
size="${KILN_BENCH_SIZE:-512}"
threads="${KILN_BENCH_THREADS:-0}"
pipeline_size="${KILN_BENCH_PIPELINE_SIZE:-0}"
if [ ! -d "$pipeline" ]; then
  echo "bench/runner.sh: pipeline $pipeline not found (the trained tiny pipeline lives at testdata/pipelines/tiny-sd)" >&2
  exit 2
fi
cd "$root"
mvn -B -q -o -pl runner -am install -Dmaven.test.skip=true >&2
mvn -B -q -o -pl runner test-compile dependency:build-classpath -Dmdep.outputFile=target/bench-classpath.txt -Dmdep.includeScope=test >&2
classpath="runner/target/test-classes:runner/target/classes:$(cat runner/target/bench-classpath.txt)"
echo "# Kiln runner benchmark — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(java -version 2>&1 | head -1)"
echo
exec java -Xmx6g -cp "$classpath" dev.kiln.runner.pipeline.RunnerBenchmark "$pipeline" "$runs" "$unet" "$size" "$threads" "$pipeline_size"
