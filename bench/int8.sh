#!/usr/bin/env bash
# int8 benchmark: the full-size SD 1.5 UNet (Kiln's export, random weights, ~860 M parameters, 3.4 GB external
# data) on ONNX Runtime CPU, 2 threads, latents 32x32 and 64x64, batch 1: the raw fp32 export (the anchor), Kiln's
# cpu profile in fp32, and Kiln's int8 per scheme (full, hybrid, weights). Per model: session creation, median UNet
# step per latent size, peak RSS of the process, model bytes, step ratio against the raw export. Goal: a step
# <= 0.5x the raw export's with the tiny pipeline's quality gate green (bench/quality.sh, run at the end).
# Every model is timed in a fresh JVM of its own (so its peak RSS is its own), rounds interleave the models so they
# share the machine's state, and the table holds the median over rounds.
# Usage: bench/int8.sh [ROUNDS=2] [CALLS=3]
#   env: KILN_BENCH_UNET (folder with model.onnx + model.onnx.data, default ~/.cache/kiln/bench/sd15-unet; make it
#        with testdata/generator/fullsize_unet.py), KILN_BENCH_THREADS=2, KILN_BENCH_LATENTS=32,64,
#        KILN_BENCH_SCHEMES="full hybrid weights", KILN_BENCH_CALIBRATION (test_data_set_N folders for the UNet;
#        default: 2 sets made here at latent 32 (calibrating a 3.4 GB UNet at 64 holds every intermediate), unit normal sample and context, timesteps 900 and 300),
#        KILN_BENCH_OPT=extended (ORT level: basic|extended|all; extended is the runner's and has ORT's QDQ fusions),
#        KILN_BENCH_QUALITY=1 (0 skips the tiny pipeline's gate), KILN_BENCH_GRID=full|quick
# Run it under `nice -n 10` on a shared machine.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rounds="${1:-2}"
calls="${2:-3}"
unet_dir="${KILN_BENCH_UNET:-$HOME/.cache/kiln/bench/sd15-unet}"
threads="${KILN_BENCH_THREADS:-2}"
latents="${KILN_BENCH_LATENTS:-32,64}"
schemes="${KILN_BENCH_SCHEMES:-full hybrid weights}"
level="${KILN_BENCH_OPT:-extended}"
if [ ! -f "$unet_dir/model.onnx" ]; then
  echo "bench/int8.sh: no full-size UNet ONNX found at $unet_dir/model.onnx." >&2
  echo "  Make it with: nice -n 5 /usr/bin/python3 testdata/generator/fullsize_unet.py   (~4 min, 7 GB RAM and disk)" >&2
  exit 2
fi
model="$unet_dir/model.onnx"
out="$(mktemp -d "${TMPDIR:-/tmp}/kiln-bench-int8.XXXXXX")"
trap 'rm -rf "$out"' EXIT
cd "$root"
./kiln --help >/dev/null   # builds the CLI once, outside the timed runs
# The timing helper is one small test-scope class (shared with bench/static.sh); compile it against the CLI's classpath.
mkdir -p "$out/classes"
javac -d "$out/classes" -cp "$(cat cli/target/classpath.txt)" optimizer/src/test/java/dev/kiln/optimizer/bench/UnetStepBenchmark.java
classpath="$out/classes:$(cat cli/target/classpath.txt)"

echo "# Kiln int8 benchmark — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(java -version 2>&1 | head -1)"
echo
echo "model: $model ($(du -h "$model.data" | cut -f1) external data); ORT CPU, $threads threads, level $level, latents $latents, batch 1, 77 tokens;"
echo "$rounds rounds x (1 warm-up + $calls timed calls) per model and size"
echo

# The variants: name and model path; rows for variants kiln optimize refused carry its one-line error.
declare -a names paths
names+=(fp32-raw); paths+=("$model")
measure_optimize() {  # name, output model, options...: wall, CPU and peak RSS of kiln optimize
  local name="$1" target="$2"; shift 2
  set +e
  /usr/bin/time -f "%e %M %U %S" -o "$out/$name.optimize.time" ./kiln optimize "$model" -o "$target" "$@" --json \
    > "$out/$name.optimize.json" 2> "$out/$name.optimize.err"
  local status=$?
  set -e
  if [ "$status" -eq 0 ]; then
    names+=("$name"); paths+=("$target")
    read -r wall rss_kb user sys < <(tail -1 "$out/$name.optimize.time")
    echo "$name $wall $(python3 -c "print(round($user + $sys, 1))") $((rss_kb / 1024))" >> "$out/optimize-rows"
  else
    echo "$name: kiln optimize exit $status: $(grep -v '^\s*Command exited' "$out/$name.optimize.err" | head -1)" >> "$out/skipped"
  fi
}
measure_optimize kiln-cpu-fp32 "$out/cpu/model.onnx" --target cpu
if ./kiln optimize --help | grep -q -- '--int8-scheme'; then
  calibration="${KILN_BENCH_CALIBRATION:-}"
  if [ -z "$calibration" ]; then
    calibration="$out/calibration"
    /usr/bin/python3 - "$calibration" <<'PY'
import os, sys
import numpy as np
from onnx import numpy_helper
root = sys.argv[1]
rng = np.random.default_rng(0)
for index, (latent, timestep) in enumerate([(32, 900), (32, 300)]):
    folder = os.path.join(root, "test_data_set_%d" % index)
    os.makedirs(folder)
    feeds = [("sample", rng.standard_normal((1, 4, latent, latent), dtype=np.float32)),
             ("timestep", np.array([timestep], dtype=np.int64)),
             ("encoder_hidden_states", rng.standard_normal((1, 77, 768), dtype=np.float32))]
    for k, (name, value) in enumerate(feeds):
        with open(os.path.join(folder, "input_%d.pb" % k), "wb") as handle:
            handle.write(numpy_helper.from_array(value, name).SerializeToString())
PY
  fi
  for scheme in $schemes; do
    measure_optimize "kiln-int8-$scheme" "$out/int8-$scheme/model.onnx" --target cpu --precision int8 --int8-scheme "$scheme" \
      --calibration "$calibration"
  done
else
  echo "int8 rows: this build's kiln optimize has no --int8-scheme (the quantizer is not merged)" >> "$out/skipped"
fi

for ((round = 0; round < rounds; round++)); do
  count=${#names[@]}
  for ((k = 0; k < count; k++)); do
    index=$(( (k + round) % count ))   # rotate the order each round
    name="${names[$index]}"
    /usr/bin/time -f "%M" -o "$out/rss.txt" java -Xmx1g -cp "$classpath" dev.kiln.optimizer.bench.UnetStepBenchmark \
      "${paths[$index]}" "$latents" "$level" "$calls" "$threads" json > "$out/step.json"
    echo "$name $(tail -1 "$out/rss.txt") $(du -sbL "$(dirname "${paths[$index]}")" | cut -f1) $(cat "$out/step.json")" >> "$out/step-rows"
    echo "round $((round + 1))/$rounds $name: $(cat "$out/step.json")" >&2
  done
done

python3 - "$out" "$latents" "${names[@]}" <<'PY'
import json, os, statistics, sys
out, latents, names = sys.argv[1], sys.argv[2].split(","), sys.argv[3:]
rows = {}
for line in open(os.path.join(out, "step-rows")):
    name, rss_kb, size, rest = line.split(" ", 3)
    rows.setdefault(name, []).append((int(rss_kb), int(size), json.loads(rest)))
def median(values):
    return statistics.median(values)
anchor = {latent: median([r[2]["stepMs"][latent] for r in rows["fp32-raw"]]) for latent in latents}
header = "| model | bytes | session create (s) | " + " | ".join(f"step {l}² (ms) | vs raw {l}²" for l in latents) + " | peak RSS (MB) |"
print(header)
print("|" + "---|" * (header.count("|") - 1))
for name in names:
    runs = rows[name]
    cells = [name, f"{runs[0][1]:,}", f"{median([r[2]['createMs'] for r in runs]) / 1000:.1f}"]
    for latent in latents:
        step = median([r[2]["stepMs"][latent] for r in runs])
        cells += [f"{step:.0f}", f"{step / anchor[latent]:.2f}x"]
    cells.append(str(max(r[0] for r in runs) // 1024))
    print("| " + " | ".join(cells) + " |")
print()
print("goal: a step <= 0.50x the raw export's at every size")
if os.path.exists(os.path.join(out, "optimize-rows")):
    print()
    print("| kiln optimize | wall (s) | CPU user+sys (s) | peak RSS (MB) |")
    print("|---|---|---|---|")
    for line in open(os.path.join(out, "optimize-rows")):
        name, wall, cpu, rss = line.split()
        print(f"| {name} | {wall} | {cpu} | {rss} |")
PY
if [ -f "$out/skipped" ]; then
  echo
  cat "$out/skipped"
fi
for name in "${names[@]}"; do
  case "$name" in kiln-int8-*) ;; *) continue ;; esac
  python3 - "$out/$name.optimize.json" "$name" <<'PY' || true
import json, sys
report = json.load(open(sys.argv[1]))
for component in report.get("components", []):
    print(f"{sys.argv[2]}: {component.get('nodesBefore')} -> {component.get('nodesAfter')} nodes")
for path, p in report.get("precision", {}).items():
    q = p.get("int8", {})
    print(f"{sys.argv[2]}: {q.get('scheme')} ({q.get('ranges')} ranges, {q.get('activations')} activations): {q.get('int8Nodes')} int8 nodes, "
          f"{q.get('weightOnlyNodes')} weight-only, {q.get('floatNodes')} float; {q.get('quantizeNodes')} QuantizeLinear, "
          f"{q.get('dequantizeNodes')} DequantizeLinear; initializers {q.get('bytesBefore')} -> {q.get('bytesAfter')} bytes; "
          f"ORT CPU kernels {q.get('ortKernels')}; parity {p.get('parity')}")
PY
done
if [ "${KILN_BENCH_QUALITY:-1}" = 1 ]; then
  echo
  quality=(cpu)
  for scheme in $schemes; do quality+=("int8-$scheme"); done
  "$root/bench/quality.sh" "${quality[@]}" | tail -n +3
fi
