#!/usr/bin/env bash
# Precision benchmark on the full-size SD 1.5 UNet (random weights, ~860 M parameters, 3.4 GB external data):
# `kiln optimize --target cuda --precision fp16` (weights converted while the writer streams them) beside `cp` of the
# same data file (the anchor, same run) and the fp32 `kiln optimize --target cuda`: wall, CPU time, peak RSS, output
# bytes. Goal: fp16 within 2x of the copy's wall time, <= 1 GB RSS, a data file about half the size.
# `--precision mixed` needs calibration inputs for the UNet (KILN_BENCH_CALIBRATION: test_data_set_N folders);
# without them that row is skipped.
# Usage: bench/precision.sh        env: KILN_BENCH_UNET (folder with model.onnx + model.onnx.data)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
unet_dir="${KILN_BENCH_UNET:-$HOME/.cache/kiln/bench/sd15-unet}"
if [ ! -f "$unet_dir/model.onnx" ]; then
  echo "bench/precision.sh: no full-size UNet ONNX found at $unet_dir/model.onnx." >&2
  echo "  Make it with: nice -n 5 /usr/bin/python3 testdata/generator/fullsize_unet.py   (~4 min, 7 GB RAM and disk)" >&2
  exit 2
fi
model="$unet_dir/model.onnx"
out="$(mktemp -d "${TMPDIR:-/tmp}/kiln-bench-precision.XXXXXX")"
trap 'rm -rf "$out"' EXIT
cd "$root"
./kiln --help >/dev/null   # builds the CLI once, outside the timed runs
echo "load average before the timed runs: $(cut -d' ' -f1-3 /proc/loadavg) (a shared machine inflates wall time; CPU time is the fairer number)"
echo
echo "# Kiln precision benchmark — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(java -version 2>&1 | head -1)"
echo

measure() {  # name, output path, command...: appends "name wall cpu rss_mb bytes exit" to $out/rows
  local name="$1" output="$2"; shift 2
  set +e
  /usr/bin/time -f "%e %M %U %S" -o "$out/time.txt" "$@" > "$out/$name.out" 2> "$out/$name.err"
  local status=$?
  set -e
  read -r wall rss_kb user sys < <(tail -1 "$out/time.txt")
  local bytes
  bytes=$(du -sb "$(dirname "$output")" | cut -f1)
  echo "$name $wall $(python3 -c "print(round($user + $sys, 2))") $((rss_kb / 1024)) $bytes $status" >> "$out/rows"
  rm -rf "$(dirname "$output")"
}

mkdir -p "$out/copy" "$out/fp32" "$out/fp16" "$out/mixed"
measure cp-data "$out/copy/model.onnx.data" cp "$model.data" "$out/copy/model.onnx.data"
measure optimize-fp32 "$out/fp32/model.onnx" ./kiln optimize "$model" -o "$out/fp32/model.onnx" --target cuda --json
measure optimize-fp16 "$out/fp16/model.onnx" ./kiln optimize "$model" -o "$out/fp16/model.onnx" --target cuda --precision fp16 --json
if [ -n "${KILN_BENCH_CALIBRATION:-}" ]; then
  measure optimize-mixed "$out/mixed/model.onnx" ./kiln optimize "$model" -o "$out/mixed/model.onnx" --target cuda \
    --precision mixed --calibration "$KILN_BENCH_CALIBRATION" --json
fi

python3 - "$out/rows" <<'PY'
import sys
rows = [line.split() for line in open(sys.argv[1])]
anchor = float(rows[0][1])
print("| run | wall (s) | CPU user+sys (s) | peak RSS (MB) | output bytes | wall / cp | exit |")
print("|---|---|---|---|---|---|---|")
for name, wall, cpu, rss, size, status in rows:
    print(f"| {name} | {wall} | {cpu} | {rss} | {size} | {float(wall) / anchor:.2f}x | {status} |")
PY
for name in optimize-fp16 optimize-mixed; do
  [ -f "$out/$name.out" ] || continue
  python3 - "$out/$name.out" "$name" <<'PY' || true
import json, sys
report = json.load(open(sys.argv[1]))
for path, p in report.get("precision", {}).items():
    print(f"{sys.argv[2]}: {p['float16Nodes']} float16 nodes, {p['float32Nodes']} float32, {p['bytesSaved']} bytes saved, "
          f"{sum(p['clampedValues'].values())} values clamped, {p['sessions']} ORT sessions")
PY
done
