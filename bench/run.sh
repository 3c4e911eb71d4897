#!/usr/bin/env bash
# kiln run / kiln demo benchmark:
#   1. `./kiln demo` cold (an empty bundle cache, after the build) and warm (the cached bundles): wall per stage (the plain
#      run's, then the ControlNet run's, with where its shape landed) and in all
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
echo "# kiln demo (kiln run on testdata/pipelines/tiny-sd-torchscript, then on tiny-sd-controlnet-torchscript with a control image) — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores"
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
for prefix, cold_run, warm_run in (("", runs["cold"], runs["warm"]), ("controlnet ", runs["cold"].get("controlnet"), runs["warm"].get("controlnet"))):
    if cold_run is None or warm_run is None:
        continue
    for cold, warm in zip(cold_run["stages"], warm_run["stages"]):
        ratio = f"{warm['ms'] / cold['ms']:.2f}" if cold["ms"] > 0 else "-"
        print(f"| {prefix}{cold['name']} | {cold['ms']:.0f} | {cold['status']} | {warm['ms']:.0f} | {warm['status']} | {ratio} |")
totals = {name: run["total_ms"] + (run["controlnet"]["total_ms"] if "controlnet" in run else 0) for name, run in runs.items()}
print(f"| in the JVM (total_ms, both runs) | {totals['cold']:.0f} | | {totals['warm']:.0f} | | {totals['warm'] / totals['cold']:.2f} |")
if "controlnet" in runs["cold"]:
    placement = runs["cold"]["controlnet"]["placement"]
    print(f"| controlnet placement: shape centroid vs the control's (px) | {placement['distance_px']:.2f} | "
          f"{'hit' if placement['hit'] else 'MISS'} (<= {placement['within_px']:.0f}) | "
          f"{runs['warm']['controlnet']['placement']['distance_px']:.2f} | without control: {placement['without_control']['distance_px']:.2f} | - |")
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
