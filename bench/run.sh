#!/usr/bin/env bash
# kiln run / kiln demo benchmark:
#   1. `./kiln demo` cold (an empty bundle cache, after the build) and warm (the cached bundle): wall per stage and in all
#      (goals: cold <= 6 s, warm <= 2 s), the cold run as the anchor of the ratio column;
#   2. bundle sizes per target for the tiny pipeline (models, lib/, total): cpu carries ORT's CPU artifact, cuda the GPU one.
# Prints Markdown tables. Usage: bench/run.sh    (uses a temporary KILN_CACHE; your ~/.cache/kiln is left alone)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$(mktemp -d "${TMPDIR:-/tmp}/kiln-bench-run.XXXXXX")"
trap 'rm -rf "$out"' EXIT
cd "$root"
./kiln --help >/dev/null   # builds the CLI once, outside the timed runs
export KILN_CACHE="$out/cache"
echo "load average before the timed runs: $(cut -d' ' -f1-3 /proc/loadavg) (a shared machine inflates wall time)"
echo
echo "# kiln demo (kiln run on testdata/pipelines/tiny-sd-torchscript) — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores"
echo
for run in cold warm; do
  start=$(date +%s%N)
  ./kiln demo -o "$out/demo-$run.png" --json > "$out/$run.json"
  end=$(date +%s%N)
  echo "$(( (end - start) / 1000000 ))" > "$out/$run.wall"
done
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
runs = {name: json.load(open(f"{out}/{name}.json")) for name in ("cold", "warm")}
walls = {name: int(open(f"{out}/{name}.wall").read()) for name in runs}
print("| stage | cold ms | cold result | warm ms | warm result | warm / cold |")
print("|---|---:|---|---:|---|---:|")
for cold, warm in zip(runs["cold"]["stages"], runs["warm"]["stages"]):
    ratio = f"{warm['ms'] / cold['ms']:.2f}" if cold["ms"] > 0 else "-"
    print(f"| {cold['name']} | {cold['ms']:.0f} | {cold['status']} | {warm['ms']:.0f} | {warm['status']} | {ratio} |")
print(f"| in the JVM (total_ms) | {runs['cold']['total_ms']:.0f} | | {runs['warm']['total_ms']:.0f} | | {runs['warm']['total_ms'] / runs['cold']['total_ms']:.2f} |")
print(f"| wall (./kiln demo, JVM start included) | {walls['cold']} | goal <= 6000 | {walls['warm']} | goal <= 2000 | {walls['warm'] / walls['cold']:.2f} |")
PY
echo
echo "## Bundle sizes, testdata/pipelines/tiny-sd"
echo
echo "| target | ONNX Runtime artifact | models MB | lib MB | total MB | files |"
echo "|---|---|---:|---:|---:|---:|"
for target in cpu cuda; do
  ./kiln bundle testdata/pipelines/tiny-sd -o "$out/bundle-$target" --target "$target" --json > "$out/bundle-$target.json"
  python3 - "$out/bundle-$target.json" "$target" <<'PY'
import json, sys
b = json.load(open(sys.argv[1]))
artifact = "onnxruntime (CPU)" if sys.argv[2] == "cpu" else "onnxruntime_gpu"
print(f"| {sys.argv[2]} | {artifact} | {b['modelBytes'] / 1e6:.1f} | {b['libraryBytes'] / 1e6:.1f} | {b['bytes'] / 1e6:.1f} | {b['files']} |")
PY
  rm -rf "$out/bundle-$target" "$out"/.bundle-"$target".kiln-*
done
