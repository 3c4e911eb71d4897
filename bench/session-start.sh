#!/usr/bin/env bash
# Session start of a full-size UNet on the CPU: creation time and one step at EXTENDED, at ALL (the runner's CPU
# level, for thread-count determinism) uncached, and at ALL through the runner's cache of ORT-optimized models
# (cold and warm), at 1 and 2 intra-op threads, with each output's hash (equal hashes = byte-identical outputs).
# Prints a Markdown table. The cold run writes a copy of the model (3.4 GB for SD 1.5) under $KILN_CACHE
# (default ~/.cache/kiln), removed at the end; needs about 3x the model's bytes of free memory.
# Usage: bench/session-start.sh [UNET_DIR] [LATENT_SIZE] [THREADS...]
#   default UNET_DIR ~/.cache/kiln/bench/sd15-unet (testdata/generator/fullsize_unet.py), LATENT_SIZE 32, THREADS 1 2
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
unet="${1:-$HOME/.cache/kiln/bench/sd15-unet}"
latent="${2:-32}"
shift $(( $# > 2 ? 2 : $# ))
threads=("$@")
[ ${#threads[@]} -eq 0 ] && threads=(1 2)
if [ ! -f "$unet/model.onnx" ]; then
  echo "bench/session-start.sh: $unet/model.onnx not found; create it with /usr/bin/python3 testdata/generator/fullsize_unet.py $unet" >&2
  exit 2
fi
cd "$root"
mvn -B -q -o -pl runner -am test-compile >&2
mvn -B -q -o -pl runner dependency:build-classpath -Dmdep.outputFile=target/bench-classpath.txt -Dmdep.includeScope=test >&2
classpath="runner/target/test-classes:runner/target/classes:common/target/classes:$(cat runner/target/bench-classpath.txt)"
echo "# Kiln session-start benchmark — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
exec java -Xmx2g -cp "$classpath" dev.kiln.runner.pipeline.SessionStartBenchmark "$unet" "$latent" "${threads[@]}"
