#!/usr/bin/env bash
# Validator benchmark on the full-size SD 1.5 UNet (random weights, ~860 M parameters, external data):
#   1. `kiln validate --static-only` over 5 resolutions (goal < 5 s and < 1 GB RSS on the 2-core machine; nothing
#      runs, weights are never loaded), with `kiln inspect` of the same file as the anchor (reading the protobuf);
#   2. one parity run at latent 32x32: the cpu-profile output of `kiln optimize` against the raw export (wall, RSS).
# Prints Markdown tables with ratios against the anchor measured in the same run.
# Usage: bench/validate.sh        env: KILN_BENCH_UNET (folder with model.onnx + model.onnx.data)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
unet_dir="${KILN_BENCH_UNET:-$HOME/.cache/kiln/bench/sd15-unet}"
if [ ! -f "$unet_dir/model.onnx" ]; then
  echo "bench/validate.sh: no full-size UNet ONNX found at $unet_dir/model.onnx." >&2
  echo "  Make it with: nice -n 5 /usr/bin/python3 testdata/generator/fullsize_unet.py   (~4 min, 7 GB RAM and disk)" >&2
  exit 2
fi
model="$unet_dir/model.onnx"
out="$(mktemp -d "${TMPDIR:-/tmp}/kiln-bench-validate.XXXXXX")"
trap 'rm -rf "$out"' EXIT
cd "$root"
./kiln --help >/dev/null   # builds the CLI once, outside the timed runs
echo "load average before the timed runs: $(cut -d' ' -f1-3 /proc/loadavg) (a shared machine inflates wall time; CPU time is the fairer number)"
echo
echo "# Kiln validator benchmark — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(java -version 2>&1 | head -1)"
echo
echo "model: $model ($(du -h "$unet_dir/model.onnx.data" 2>/dev/null | cut -f1) external data)"
echo

measure() {  # name, command...: appends "name wall cpu rss_mb exit" to $out/rows
  local name="$1"; shift
  set +e
  /usr/bin/time -f "%e %M %U %S" -o "$out/time.txt" "$@" > "$out/$name.out" 2> "$out/$name.err"
  local status=$?
  set -e
  read -r wall rss_kb user sys < <(tail -1 "$out/time.txt")
  echo "$name $wall $(python3 -c "print(round($user + $sys, 2))") $((rss_kb / 1024)) $status" >> "$out/rows"
}

measure inspect ./kiln inspect "$model" --json
measure static-5-sizes ./kiln validate "$model" --static-only --json --shapes "batch=1;height=32,64,96,128,160;width=64"
./kiln optimize "$model" -o "$out/unet-cpu/model.onnx" --target cpu > /dev/null
measure parity-32 ./kiln validate "$out/unet-cpu/model.onnx" --reference "$model" --json --shapes "batch=1;height=32;width=32"

python3 - "$out/rows" "$out" <<'PY'
import json, sys
rows = [line.split() for line in open(sys.argv[1])]
anchor = float(rows[0][1])
print("| run | wall (s) | CPU user+sys (s) | peak RSS (MB) | wall / inspect | exit |")
print("|---|---|---|---|---|---|")
for name, wall, cpu, rss, status in rows:
    print(f"| {name} | {wall} | {cpu} | {rss} | {float(wall) / anchor:.1f}x | {status} |")
print()
for name in ("static-5-sizes", "parity-32"):
    try:
        report = json.load(open(f"{sys.argv[2]}/{name}.out"))
    except ValueError:
        print(f"{name}: no JSON report ({open(f'{sys.argv[2]}/{name}.err').read().strip()[:300]})")
        continue
    for component in report["components"]:
        proof = component.get("summary", {}).get("shapeProof", {})
        parity = [c for c in component["checks"] if c["check"] == "parity"]
        worst = max((c.get("metrics", {}).get("maxRelative", 0) for c in parity), default=None)
        print(f"{name}: passed={report['passed']} checks={report['checks']} failures={report['failures']} "
              f"shape sites={proof.get('sites')} proven={proof.get('proven')} worst parity max rel={worst}")
PY
