#!/usr/bin/env bash
# Static-shapes benchmark (issue 13): the full-size SD 1.5 UNet on ORT CPU, batch 1, 77 tokens, at 32x32 and 64x64
# latents: raw export vs Kiln cpu profile vs cpu profile + `--static` (one file per latent size), each at ORT session
# optimization level ALL and EXTENDED. Per cell: session creation time, median step latency, peak RSS of the process
# (one model per JVM, so the RSS is that model's). One run, interleaved: for each latent and level the three variants
# run back to back, so a change in machine load hits all of them alike. Ratios are against the raw export measured
# in the same run. Prints Markdown tables and says whether static shapes buy at least 10 % latency.
# Usage: bench/static.sh [STEPS=3] [THREADS=2]
#   env: KILN_BENCH_UNET (folder with model.onnx + model.onnx.data, made by `kiln export` or
#        testdata/generator/fullsize_unet.py), KILN_BENCH_WORK (where the optimized variants go; default a temp folder,
#        removed at exit; the variants need ~3x the model's size on disk)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
steps="${1:-3}"
threads="${2:-2}"
unet_dir="${KILN_BENCH_UNET:-$HOME/.cache/kiln/bench/sd15-unet}"
if [ ! -f "$unet_dir/model.onnx" ]; then
  echo "bench/static.sh: no full-size UNet ONNX found at $unet_dir/model.onnx." >&2
  echo "  Make it with: /usr/bin/python3 testdata/generator/fullsize_unet.py   (see testdata/README for time and size)" >&2
  exit 2
fi
raw="$unet_dir/model.onnx"
if [ -n "${KILN_BENCH_WORK:-}" ]; then
  work="$KILN_BENCH_WORK"
  mkdir -p "$work"
else
  work="$(mktemp -d "${TMPDIR:-/tmp}/kiln-bench-static.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
fi
cd "$root"
./kiln --help >/dev/null   # builds the CLI once, outside the timed runs
# The timing helper is one small test-scope class; compile it against the CLI's classpath (no Maven run needed).
mkdir -p "$work/classes"
javac -d "$work/classes" -cp "$(cat cli/target/classpath.txt)" optimizer/src/test/java/dev/kiln/optimizer/bench/UnetStepBenchmark.java
classpath="$work/classes:$(cat cli/target/classpath.txt)"

# Symbolic dims as `kiln inspect` lists them for a `kiln export`ed UNet (Optimum exports name them alike).
make_variant() { # OUT_FOLDER [STATIC_DIMS]
  local out="$1/model.onnx"
  [ -f "$out" ] && return 0
  if [ -n "${2:-}" ]; then
    ./kiln optimize "$raw" -o "$out" --target cpu --static "$2" >&2
  else
    ./kiln optimize "$raw" -o "$out" --target cpu >&2
  fi
}
make_variant "$work/cpu"
make_variant "$work/static32" batch_size=1,height=32,width=32,sequence_length=77,steps=1
make_variant "$work/static64" batch_size=1,height=64,width=64,sequence_length=77,steps=1

load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
results="$work/results.txt"
: > "$results"
for latent in 32 64; do
  for level in ALL EXTENDED; do
    for variant in raw cpu static; do
      case "$variant" in
        raw) model="$raw" ;;
        cpu) model="$work/cpu/model.onnx" ;;
        static) model="$work/static$latent/model.onnx" ;;
      esac
      echo "  measuring $variant at ${latent}x${latent}, $level ..." >&2
      line="$(/usr/bin/time -f "%M" -o "$work/rss.txt" java -Xmx2g -cp "$classpath" dev.kiln.optimizer.bench.UnetStepBenchmark \
        "$model" "$latent" "$level" "$steps" "$threads")"
      echo "$latent $level $variant $line $(tail -1 "$work/rss.txt")" >> "$results"
    done
  done
done
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

echo "# Kiln static-shapes benchmark — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(java -version 2>&1 | head -1)"
echo
echo "model: $raw ($(du -h "$unet_dir/model.onnx.data" 2>/dev/null | cut -f1) external data); ORT CPU, $threads intra-op threads,"
echo "batch 1, 77 tokens, median of $steps steps after one warm-up step; load average before $load_before, after $load_after"
echo
python3 - "$results" <<'PY'
import sys
rows = [line.split() for line in open(sys.argv[1]) if line.strip()]
cells = {(r[0], r[1], r[2]): (float(r[3]), float(r[4]), int(r[5]) / 1024) for r in rows}
names = {"raw": "raw export", "cpu": "cpu profile", "static": "cpu profile + --static"}
print("| latent | ORT level | variant | session create (ms) | x raw | median step (ms) | x raw | peak RSS (MB) | x raw |")
print("|---|---|---|---|---|---|---|---|---|")
for latent in ("32", "64"):
    for level in ("ALL", "EXTENDED"):
        base = cells[(latent, level, "raw")]
        for variant in ("raw", "cpu", "static"):
            create, step, rss = cells[(latent, level, variant)]
            print(f"| {latent}x{latent} | {level} | {names[variant]} | {create:.0f} | {create / base[0]:.2f} | {step:.0f} | "
                  f"{step / base[1]:.2f} | {rss:.0f} | {rss / base[2]:.2f} |")
print()
print("static shapes vs the dynamic cpu profile (same latent, same level):")
small = []
for latent in ("32", "64"):
    for level in ("ALL", "EXTENDED"):
        dynamic, static = cells[(latent, level, "cpu")], cells[(latent, level, "static")]
        gain = 1 - static[1] / dynamic[1]
        create_gain = 1 - static[0] / dynamic[0]
        print(f"- {latent}x{latent} {level}: step {dynamic[1]:.0f} -> {static[1]:.0f} ms (x{static[1] / dynamic[1]:.2f}, "
              f"{gain * 100:+.1f} % saved), session create {dynamic[0]:.0f} -> {static[0]:.0f} ms "
              f"(x{static[0] / dynamic[0]:.2f}, {create_gain * 100:+.1f} % saved)")
        if gain < 0.10:
            small.append(f"{latent}x{latent} {level}: {gain * 100:+.1f} % saved")
print()
if small:
    print("Static shapes buy LESS than 10 % step latency here (" + "; ".join(small) + "): keep the pass for cold start "
          "(session creation) and for TensorRT, which needs static or profiled shapes, not for CPU step latency.")
else:
    print("Static shapes buy at least 10 % step latency in every cell.")
PY
