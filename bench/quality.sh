#!/usr/bin/env bash
# Image-quality gate benchmark: the trained tiny pipeline (testdata/pipelines/tiny-sd, fp32) against pipelines
# `kiln optimize` makes from it, through `kiln compare` on the full judged grid (the 216 images of
# eval_scores.json: 72 prompts x seeds 0-2, each with ddim, euler and dpm++2m, 20 steps, guidance 7.5).
# Per candidate and scheduler: the judge's colour/shape/background scores (reference -> candidate), PSNR of each
# candidate image against the reference's (mean / min / pooled), the gate (colour and shape drop <= 2 points),
# and the wall time of the comparison.
# Usage: bench/quality.sh [VARIANT...]   (default: cpu fp16 mixed)
#   VARIANT: cpu (fp32 cpu profile, the control), fp16, mixed, int8-full, int8-hybrid, int8-weights
#   env: KILN_BENCH_GRID=full|quick, KILN_BENCH_PIPELINE (default testdata/pipelines/tiny-sd)
# A variant `kiln optimize` refuses (an option this build lacks) gets a row with its one-line error.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
grid="${KILN_BENCH_GRID:-full}"
pipeline="${KILN_BENCH_PIPELINE:-$root/testdata/pipelines/tiny-sd}"
variants=("$@")
[ ${#variants[@]} -gt 0 ] || variants=(cpu fp16 mixed)
out="$(mktemp -d "${TMPDIR:-/tmp}/kiln-bench-quality.XXXXXX")"
trap 'rm -rf "$out"' EXIT
cd "$root"
./kiln --help >/dev/null   # builds the CLI once, outside the timed runs
echo "# Kiln quality gate — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), grid $grid"
echo
echo "reference: $pipeline (fp32)"
echo
for variant in "${variants[@]}"; do
  case "$variant" in
    cpu) options=(--target cpu) ;;
    fp16) options=(--target cpu --precision fp16) ;;
    mixed) options=(--target cpu --precision mixed) ;;
    int8-*) options=(--target cpu --precision int8 --int8-scheme "${variant#int8-}") ;;
    *) echo "bench/quality.sh: unknown variant $variant (cpu, fp16, mixed, int8-full, int8-hybrid, int8-weights)" >&2; exit 2 ;;
  esac
  if ! ./kiln optimize "$pipeline" -o "$out/$variant" "${options[@]}" --json > "$out/$variant.optimize.json" 2> "$out/$variant.optimize.err"; then
    echo "{\"variant\": \"$variant\", \"error\": $(head -1 "$out/$variant.optimize.err" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read().strip()))')}" > "$out/$variant.compare.json"
    continue
  fi
  start=$(date +%s.%N)
  set +e
  ./kiln compare "$pipeline" "$out/$variant" --grid "$grid" --json > "$out/$variant.compare.json" 2> "$out/$variant.compare.err"
  status=$?
  set -e
  echo "$variant $status $(python3 -c "print(round($(date +%s.%N) - $start, 1))")" >> "$out/walls"
  if [ "$status" -ge 2 ]; then
    echo "{\"variant\": \"$variant\", \"error\": $(head -1 "$out/$variant.compare.err" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read().strip()))')}" > "$out/$variant.compare.json"
  fi
done
python3 - "$out" "${variants[@]}" <<'PY'
import json, os, sys
out, variants = sys.argv[1], sys.argv[2:]
walls = {}
if os.path.exists(os.path.join(out, "walls")):
    for line in open(os.path.join(out, "walls")):
        name, status, wall = line.split()
        walls[name] = (int(status), wall)
print("| candidate | scheduler | colour ref -> cand | shape ref -> cand | background ref -> cand | PSNR mean / min / pooled (dB) | verdicts changed | gate |")
print("|---|---|---|---|---|---|---|---|")
for variant in variants:
    report = json.load(open(os.path.join(out, variant + ".compare.json")))
    if "error" in report:
        print(f"| {variant} | - | - | - | - | - | - | not run: {report['error']} |")
        continue
    for row in report["schedulers"]:
        r, c = row["reference"], row["candidate"]
        print(f"| {variant} | {row['scheduler']} | {r['colour']:.2f} -> {c['colour']:.2f} | {r['shape']:.2f} -> {c['shape']:.2f} | "
              f"{r['background']:.2f} -> {c['background']:.2f} | {row['psnrMean']:.2f} / {row['psnrMin']:.2f} / {row['psnrPooled']:.2f} | "
              f"{row['changedVerdicts']} of {row['images']} | {'pass' if row['passed'] else 'FAIL'} |")
print()
for variant in variants:
    if variant in walls:
        status, wall = walls[variant]
        print(f"{variant}: kiln compare exit {status}, {wall} s wall")
    report = json.load(open(os.path.join(out, variant + ".compare.json")))
    for failure in report.get("failures", []):
        print(f"  {variant} FAIL {failure}")
PY
