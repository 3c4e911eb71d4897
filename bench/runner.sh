#!/usr/bin/env bash
# Runner benchmark: per-stage latency of the tiny pipeline (median of N runs) and one full-size SD 1.5 UNet
# step on CPU through ORT and libtorch when ~/.cache/kiln/bench/sd15-unet/ exists (made by testdata/generator/fullsize_unet.py). Prints Markdown tables.
# Usage: bench/runner.sh [RUNS] [PIPELINE_DIR]
#   env: KILN_BENCH_SIZE=512 (UNet step size), KILN_BENCH_THREADS=0 (= all cores),
#        KILN_BENCH_PIPELINE_SIZE=0 (pipeline image size; 0 = the pipeline's default, 64 for the tiny one),
#        KILN_BENCH_TORCH_THREADS=1 (libtorch intra-op threads: on 2 shared cores 2 OpenMP threads are pathological)
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
export DJL_CACHE_DIR="${DJL_CACHE_DIR:-$HOME/.cache/kiln/djl}"
exec java -Xmx6g -Dai.djl.offline=true -Dai.djl.pytorch.num_interop_threads=1 \
  -Dai.djl.pytorch.num_threads="${KILN_BENCH_TORCH_THREADS:-1}" -cp "$classpath" dev.kiln.runner.pipeline.RunnerBenchmark "$pipeline" "$runs" "$unet" "$size" "$threads" "$pipeline_size"
