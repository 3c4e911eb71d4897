#!/usr/bin/env bash
# Image-quality gate benchmark: the trained tiny pipeline (testdata/pipelines/tiny-sd, fp32) against pipelines
# `kiln optimize` makes from it, through `kiln compare` on the full judged grid (the 216 images of
# eval_scores.json: 72 prompts x seeds 0-2, each with ddim, euler and dpm++2m, 20 steps, guidance 7.5).
# Per candidate and scheduler: the judge's colour/shape/background scores (reference -> candidate), PSNR of each
# candidate image against the reference's (mean / min / pooled), the gate (colour and shape drop <= 2 points),
# and the wall time of each candidate's drawing (the reference is drawn once; the reports are kiln compare's).
# Usage: bench/quality.sh [VARIANT...]   (default: cpu fp16 mixed)
#   VARIANT: cpu (fp32 cpu profile, the control), fp16, mixed, int8-full, int8-hybrid, int8-weights
#   env: KILN_BENCH_GRID=full|eval|quick (eval: the 216 with ddim only), KILN_BENCH_PIPELINE (default
#        testdata/pipelines/tiny-sd), KILN_BENCH_CALIBRATION (mixed/int8: one test_data_set_N folder per component;
#        default: none, kiln optimize calibrates a pipeline folder on the runner's recorded inputs itself;
#        "reference": made here from the tiny pipeline's reference run, reference/*.npy — the UNet's inputs at 8 of
#        its 20 DDIM steps under guidance, the VAE decoder's latents of the last 8 steps, both prompts' token ids,
#        the reference image and its mirror for the VAE encoder)
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
mvn -B -q -o -pl validator -am test-compile dependency:build-classpath -Dmdep.outputFile=target/bench-classpath.txt \
  -Dmdep.includeScope=test >&2
classpath="validator/target/test-classes:validator/target/classes:$(cat validator/target/bench-classpath.txt)"
candidates=()
echo "# Kiln quality gate — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), grid $grid"
echo
echo "reference: $pipeline (fp32)"
echo
calibration="${KILN_BENCH_CALIBRATION:-}"
if [ "$calibration" = reference ]; then
  calibration="$out/calibration"
  /usr/bin/python3 - "$pipeline" "$calibration" <<'PY'
import json, os, sys
import numpy as np
from onnx import numpy_helper
pipeline, out = sys.argv[1], sys.argv[2]
reference = lambda name: np.load(os.path.join(pipeline, "reference", name))
run = json.load(open(os.path.join(pipeline, "reference", "reference.json")))
noise, steps = reference("initial_noise.npy"), reference("latents_per_step.npy")
context = np.concatenate([reference("uncond_last_hidden_state.npy"), reference("last_hidden_state.npy")]).astype(np.float32)
timesteps = run.get("timesteps") or [(19 - k) * 50 + 1 for k in range(20)]
scaling = json.load(open(os.path.join(pipeline, "vae_decoder", "config.json"))).get("scaling_factor", 0.18215)
def save(component, index, arrays):
    folder = os.path.join(out, component, "test_data_set_%d" % index)
    os.makedirs(folder)
    for k, (name, value) in enumerate(arrays):
        with open(os.path.join(folder, "input_%d.pb" % k), "wb") as handle:
            handle.write(numpy_helper.from_array(value, name).SerializeToString())
for index, step in enumerate([0, 2, 5, 8, 11, 14, 17, 19]):
    latent = noise if step == 0 else steps[step - 1]
    save("unet", index, [("sample", np.concatenate([latent, latent]).astype(np.float32)),
                         ("timestep", np.array([timesteps[step]], dtype=np.int64)), ("encoder_hidden_states", context)])
for index, step in enumerate(range(12, 20)):
    save("vae_decoder", index, [("latent_sample", (steps[step] / scaling).astype(np.float32))])
save("text_encoder", 0, [("input_ids", reference("input_ids.npy").astype(np.int32))])
save("text_encoder", 1, [("input_ids", reference("uncond_input_ids.npy").astype(np.int32))])
image = reference("image.npy").astype(np.float32)
save("vae_encoder", 0, [("sample", image)])
save("vae_encoder", 1, [("sample", image[:, :, :, ::-1].copy())])
PY
fi
for variant in "${variants[@]}"; do
  case "$variant" in
    cpu) options=(--target cpu) ;;
    fp16) options=(--target cpu --precision fp16) ;;
    mixed) options=(--target cpu --precision mixed ${calibration:+--calibration "$calibration"}) ;;
    int8-*) options=(--target cpu --precision int8 --int8-scheme "${variant#int8-}" ${calibration:+--calibration "$calibration"}) ;;
    *) echo "bench/quality.sh: unknown variant $variant (cpu, fp16, mixed, int8-full, int8-hybrid, int8-weights)" >&2; exit 2 ;;
  esac
  if ! ./kiln optimize "$pipeline" -o "$out/$variant" "${options[@]}" --json > "$out/$variant.optimize.json" 2> "$out/$variant.optimize.err"; then
    echo "{\"variant\": \"$variant\", \"error\": $(head -1 "$out/$variant.optimize.err" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read().strip()))')}" > "$out/$variant.compare.json"
    continue
  fi
  candidates+=("$variant=$out/$variant")
done
# kiln compare's reports, the reference drawn once for all candidates (QualityBenchmark)
if [ ${#candidates[@]} -gt 0 ]; then
  java -Xmx2g -cp "$classpath" dev.kiln.validator.bench.QualityBenchmark "$pipeline" "$grid" "$out" "${candidates[@]}" > "$out/walls"
fi
python3 - "$out" "${variants[@]}" <<'PY'
import json, os, sys
out, variants = sys.argv[1], sys.argv[2:]
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
    report = json.load(open(os.path.join(out, variant + ".compare.json")))
    ddim = [row for row in report.get("schedulers", []) if row["scheduler"] == "ddim"]
    if ddim and report["grid"] in ("full", "eval") and variant == variants[0]:
        scores = json.load(open(os.path.join(report["reference"], "eval_scores.json")))["main"] \
            if os.path.exists(os.path.join(report["reference"], "eval_scores.json")) else None
        if scores:
            r = ddim[0]["reference"]
            print(f"reference, ddim, 216 images through the Java runner and judge: colour {r['colour']:.2f} shape {r['shape']:.2f} "
                  f"background {r['background']:.2f}; eval_scores.json (PyTorch sampler, Python judge): colour {100 * scores['colour']:.2f} "
                  f"shape {100 * scores['shape']:.2f} background {100 * scores['background']:.2f}")
    for failure in report.get("failures", []):
        print(f"  {variant} FAIL {failure}")
PY
echo
cat "$out/walls" 2>/dev/null || true
