#!/usr/bin/env bash
# Precision benchmark on the full-size SD 1.5 UNet (random weights, ~860 M parameters, 3.4 GB external data), one
# table from one run: `cp` of the data file (the anchor), `kiln optimize --target cuda` (fp32, the floor), then
# `--precision fp16` (weights converted in one pass while the writer streams them) and `--precision mixed`
# (calibrated on ORT CPU at 32x32 and 24x24 latents, batch 1): wall, CPU time, peak RSS, output bytes, ORT sessions
# of the mixed search, ratios against cp and fp16.
# Goals: fp16 within 2x of the copy's wall time and <= 1 GB RSS, a data file about half the size; mixed within 3x of
# fp16's wall time. The machine may be shared: CPU time is the steadier number (the load average is printed).
# Calibration inputs (ONNX test-data layout, never committed) are generated once with /usr/bin/python3 (numpy, onnx)
# into ~/.cache/kiln/bench/sd15-unet-calibration unless KILN_BENCH_CALIBRATION names a folder.
# Usage: bench/precision.sh [fp16]   (fp16: skip the mixed row)     env: KILN_BENCH_UNET (model.onnx + model.onnx.data)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
unet_dir="${KILN_BENCH_UNET:-$HOME/.cache/kiln/bench/sd15-unet}"
if [ ! -f "$unet_dir/model.onnx" ]; then
  echo "bench/precision.sh: no full-size UNet ONNX found at $unet_dir/model.onnx." >&2
  echo "  Make it with: nice -n 5 /usr/bin/python3 testdata/generator/fullsize_unet.py   (~4 min, 7 GB RAM and disk)" >&2
  exit 2
fi
model="$unet_dir/model.onnx"
calibration="${KILN_BENCH_CALIBRATION:-$HOME/.cache/kiln/bench/sd15-unet-calibration}"
if [ "${1:-}" != fp16 ] && [ ! -d "$calibration/test_data_set_3" ]; then
  # Four sets, two resolutions: the mixed search calibrates on sets 0 and 2 and verifies on 1 and 3.
  /usr/bin/python3 - "$calibration" <<'PY'
import os, sys
import numpy as np
from onnx import numpy_helper
folder = sys.argv[1]
random = np.random.default_rng(20261207)
for index, (size, step) in enumerate([(32, 999), (32, 500), (24, 250), (24, 50)]):
    set_folder = os.path.join(folder, "test_data_set_%d" % index)
    os.makedirs(set_folder, exist_ok=True)
    inputs = {"sample": random.standard_normal((1, 4, size, size)).astype(np.float32),
              "timestep": np.array([step], dtype=np.int64),
              "encoder_hidden_states": random.standard_normal((1, 77, 768)).astype(np.float32)}
    for k, (name, value) in enumerate(inputs.items()):
        with open(os.path.join(set_folder, "input_%d.pb" % k), "wb") as handle:
            handle.write(numpy_helper.from_array(value, name).SerializeToString())
print("calibration sets written to", folder, file=sys.stderr)
PY
fi
out="$(mktemp -d "${TMPDIR:-/tmp}/kiln-bench-precision.XXXXXX")"
trap 'rm -rf "$out"' EXIT
cd "$root"
./kiln --help >/dev/null   # builds the CLI (and its class-data archive) once, outside the timed runs
# The timed runs start the JVM as ./kiln does but skip its is-the-jar-stale check, so an edit made while the
# benchmark runs cannot put a Maven build inside a timed run.
cds=()
[ -f cli/target/kiln.jsa ] && [ "${KILN_CDS:-1}" != 0 ] && cds=(-XX:SharedArchiveFile=cli/target/kiln.jsa -Xlog:cds=off -Xlog:cds+dynamic=off)
kiln=(java ${KILN_JAVA_OPTS:--Xmx4g} ${cds[@]+"${cds[@]}"} -cp "cli/target/kiln-cli-0.1.0-SNAPSHOT.jar:$(cat cli/target/classpath.txt)" dev.kiln.cli.Main)
cat "$model.data" > /dev/null   # every run finds the weights in the page cache, the anchor included
echo "load average before the timed runs: $(cut -d' ' -f1-3 /proc/loadavg) (a shared machine inflates wall time; CPU time is the fairer number)"
echo
echo "# Kiln precision benchmark — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(java -version 2>&1 | head -1)"
echo

measure() {  # name, output folder, command...: appends "name wall cpu rss_mb bytes exit" to $out/rows
  local name="$1" folder="$2"; shift 2
  mkdir -p "$folder"
  set +e
  /usr/bin/time -f "%e %M %U %S" -o "$out/time.txt" "$@" > "$out/$name.out" 2> "$out/$name.err"
  local status=$?
  set -e
  read -r wall rss_kb user sys < <(tail -1 "$out/time.txt")
  local bytes
  bytes=$(du -sb "$folder" | cut -f1)
  echo "$name $wall $(python3 -c "print(round($user + $sys, 2))") $((rss_kb / 1024)) $bytes $status" >> "$out/rows"
  rm -rf "$folder"
}

measure cp-data "$out/copy" cp "$model.data" "$out/copy/model.onnx.data"
# fp32 (fusions and layout only) is the floor under fp16: the same read, fusions and OHWI transposes, no conversion.
measure optimize-fp32 "$out/fp32" "${kiln[@]}" optimize "$model" -o "$out/fp32/model.onnx" --target cuda --json
measure optimize-fp16 "$out/fp16" env KILN_PHASES=1 "${kiln[@]}" optimize "$model" -o "$out/fp16/model.onnx" --target cuda --precision fp16 --json
if [ "${1:-}" != fp16 ]; then
  measure optimize-mixed "$out/mixed" "${kiln[@]}" optimize "$model" -o "$out/mixed/model.onnx" --target cuda \
    --precision mixed --calibration "$calibration" --json
fi

python3 - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
rows = [line.split() for line in open(os.path.join(out, "rows"))]
walls = {row[0]: float(row[1]) for row in rows}
def report(name):
    try:
        text = open(os.path.join(out, name + ".out")).read()
        return next(iter(json.loads(text[text.index("{"):]).get("precision", {}).values()), None)
    except (OSError, ValueError, StopIteration):
        return None
print("| run | wall (s) | CPU user+sys (s) | peak RSS (MB) | output bytes | ORT sessions | wall / cp | wall / fp16 | exit |")
print("|---|---|---|---|---|---|---|---|---|")
for name, wall, cpu, rss, size, status in rows:
    precision = report(name)
    sessions = precision["sessions"] if precision and precision["precision"] == "mixed" else ""
    fp16 = f"{float(wall) / walls['optimize-fp16']:.2f}x" if "optimize-fp16" in walls and name.startswith("optimize") else ""
    print(f"| {name} | {wall} | {cpu} | {rss} | {size} | {sessions} | {float(wall) / walls['cp-data']:.2f}x | {fp16} | {status} |")
for name in ("optimize-fp16", "optimize-mixed"):
    p = report(name)
    if p:
        print(f"{name}: {p['float16Nodes']} float16 nodes, {p['float32Nodes']} float32, {p['bytesSaved']} bytes saved, "
              f"{sum(p['clampedValues'].values())} values clamped in {len(p['clampedValues'])} tensors, "
              f"parity {p.get('parity') or '-'}")
    elif name in walls:
        print(f"{name}: no report; its stderr ends with:")
        print(open(os.path.join(out, name + ".err")).read()[-600:])
phases = [line.split("kiln-phase ", 1)[1] for line in open(os.path.join(out, "optimize-fp16.err")) if line.startswith("kiln-phase ")]
if phases:
    print("\noptimize-fp16 phases (KILN_PHASES=1: wall since the previous mark, since the JVM started; CPU of all threads since the previous mark):")
    print("\n".join("    " + phase.rstrip() for phase in phases))
PY
