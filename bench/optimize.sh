#!/usr/bin/env bash
# Optimizer benchmark: the full-size SD 1.5 UNet (random weights, ~860 M parameters, external data) through
# `kiln optimize --target cuda` and `--target cpu`: wall time and peak RSS (goal <= 20 s and <= 2 GB on the
# 2-core reference machine; weights stay memory-mapped and are streamed, never loaded), then ORT CPU latency
# of one UNet call, original vs cpu profile, in one process. Prints Markdown tables.
# Usage: bench/optimize.sh [RUNS=3] [LATENT=32]
#   env: KILN_BENCH_UNET (folder with model.onnx + model.onnx.data), KILN_BENCH_THREADS=0 (= all cores)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runs="${1:-3}"
latent="${2:-32}"
unet_dir="${KILN_BENCH_UNET:-$HOME/.cache/kiln/bench/sd15-unet}"
if [ ! -f "$unet_dir/model.onnx" ]; then
  echo "bench/optimize.sh: no full-size UNet ONNX found at $unet_dir/model.onnx." >&2
  echo "  Make it with: /usr/bin/python3 testdata/generator/fullsize_unet.py   (see testdata/README for time and size)" >&2
  exit 2
fi
model="$unet_dir/model.onnx"
out="$(mktemp -d "${TMPDIR:-/tmp}/kiln-bench-optimize.XXXXXX")"
trap 'rm -rf "$out"' EXIT
cd "$root"
./kiln --help >/dev/null   # builds the CLI once, outside the timed runs
echo "load average before the timed runs: $(cut -d' ' -f1-3 /proc/loadavg) (a shared machine inflates wall time; CPU time is the fairer number)"
echo

echo "# Kiln optimizer benchmark — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(java -version 2>&1 | head -1)"
echo
echo "model: $model ($(du -h "$unet_dir/model.onnx.data" 2>/dev/null | cut -f1) external data)"
echo
echo "| target | wall (s) | CPU user+sys (s) | peak RSS (MB) | nodes before -> after |"
echo "|---|---|---|---|---|"
for target in cuda cpu; do
  /usr/bin/time -f "%e %M %U %S" -o "$out/time-$target.txt" \
    ./kiln optimize "$model" -o "$out/unet-$target/model.onnx" --target "$target" --json > "$out/report-$target.json"
  read -r wall rss_kb user sys < "$out/time-$target.txt"
  cpu="$(python3 -c "print(round($user + $sys, 1))")"
  nodes="$(python3 -c "import json,sys; c=json.load(open(sys.argv[1]))['components'][0]; print(f\"{c['nodesBefore']} -> {c['nodesAfter']}\")" "$out/report-$target.json")"
  echo "| $target | $wall | $cpu | $((rss_kb / 1024)) | $nodes |"
done
echo
mvn -B -q -o -pl optimizer test-compile dependency:build-classpath -Dmdep.outputFile=target/bench-classpath.txt -Dmdep.includeScope=test >&2
classpath="optimizer/target/test-classes:optimizer/target/classes:$(cat optimizer/target/bench-classpath.txt)"
java -Xmx4g -cp "$classpath" dev.kiln.optimizer.bench.UnetLatencyBenchmark "$model" "$out/unet-cpu/model.onnx" "$latent" "$runs" "${KILN_BENCH_THREADS:-0}"
