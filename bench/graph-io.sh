#!/usr/bin/env bash
# Graph I/O benchmark: read + write of a >= 3 GB external-data model (ModelReader.read then ModelWriter.write,
# data streamed to one aligned data file) against a plain `cp` of the same bytes. Prints a Markdown table of
# wall time and peak RSS. Goals: read+write <= 2x the copy, peak RSS <= 500 MB.
# Kiln's time includes JVM start-up (~0.5 s). The machine is shared: read the best of RUNS, not one run.
# Usage: bench/graph-io.sh [GIB] [RUNS]   env: KILN_BENCH_DIR (default /tmp/kiln-bench-graph-io, on disk)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
gib="${1:-3}"
runs="${2:-2}"
work="${KILN_BENCH_DIR:-/tmp/kiln-bench-graph-io}"
cd "$root"
mvn -B -q -o -pl graph -am install -DskipTests >&2
mvn -B -q -o -pl graph test-compile dependency:build-classpath -Dmdep.outputFile=target/bench-classpath.txt -Dmdep.includeScope=test >&2
classpath="graph/target/test-classes:graph/target/classes:$(cat graph/target/bench-classpath.txt)"
main=dev.kiln.graph.bench.GraphIoBenchmark

rm -rf "$work" && mkdir -p "$work/source"
trap 'rm -rf "$work"' EXIT
echo "generating a ${gib} GiB external-data model in $work ..." >&2
java -Xmx1g -cp "$classpath" "$main" generate "$work/source" "$gib"
bytes=$(( $(stat -c %s "$work/source/model.onnx") + $(stat -c %s "$work/source/model.onnx.data") ))

measure() { # label, command...: prints "label seconds peak_rss_kib"
  local label="$1"; shift
  # Same start for every operation: no earlier outputs competing for the page cache, nothing dirty, the source
  # read once so both the copy and Kiln find it cached (the machine's RAM holds it; outputs are not synced).
  rm -rf "$work/copy" "$work/kiln" && mkdir -p "$work/copy" "$work/kiln"
  sync
  cat "$work/source/model.onnx.data" >/dev/null
  local stats
  stats=$( { /usr/bin/time -f "%e %M" "$@" >"$work/stdout"; } 2>&1 | tail -1)
  local inside
  inside=$(sed -n 's/^inProcessSeconds=//p' "$work/stdout")
  echo "$label $stats ${inside:--}"
}

results=()
for run in $(seq 1 "$runs"); do
  results+=("$(measure "cp" cp "$work/source/model.onnx" "$work/source/model.onnx.data" "$work/copy/")")
  results+=("$(measure "kiln-read+write" java -Xmx256m -cp "$classpath" "$main" roundtrip "$work/source/model.onnx" "$work/kiln/model.onnx")")
done
identical=no
if cmp -s "$work/source/model.onnx.data" "$work/kiln/model.onnx.data" && cmp -s "$work/source/model.onnx" "$work/kiln/model.onnx"; then
  identical=yes
fi

echo "# Kiln graph I/O benchmark — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(java -version 2>&1 | head -1)"
echo
echo "Model: $(awk -v b="$bytes" 'BEGIN{printf "%.2f GB", b/1e9}') (external data, $(( $(stat -c %s "$work/source/model.onnx.data") / 67108864 )) tensors of 64 MiB); output byte-identical to input: $identical"
echo
echo "| run | operation | wall s | of which in-process s | peak RSS MB | throughput GB/s |"
echo "|---|---|---|---|---|---|"
best_cp=""; best_kiln=""; worst_rss=0
i=0
for line in "${results[@]}"; do
  read -r label seconds rss inside <<<"$line"
  run=$(( i / 2 + 1 )); i=$(( i + 1 ))
  printf "| %d | %s | %.2f | %s | %.0f | %.2f |\n" "$run" "$label" "$seconds" "$inside" "$(awk -v k="$rss" 'BEGIN{print k/1024}')" \
    "$(awk -v b="$bytes" -v s="$seconds" 'BEGIN{print (s > 0 ? b/1e9/s : 0)}')"
  if [ "$label" = cp ]; then
    best_cp=$(awk -v a="${best_cp:-1e9}" -v b="$seconds" 'BEGIN{print (b < a ? b : a)}')
  else
    best_kiln=$(awk -v a="${best_kiln:-1e9}" -v b="$seconds" 'BEGIN{print (b < a ? b : a)}')
    worst_rss=$(awk -v a="$worst_rss" -v b="$rss" 'BEGIN{print (b > a ? b : a)}')
  fi
done
echo
ratio=$(awk -v k="$best_kiln" -v c="$best_cp" 'BEGIN{printf "%.2f", k/c}')
rss_mb=$(awk -v k="$worst_rss" 'BEGIN{printf "%.0f", k/1024}')
echo "| summary | value | goal | met |"
echo "|---|---|---|---|"
echo "| best read+write / best cp (wall, JVM start-up included) | ${ratio}x | <= 2x | $(awk -v r="$ratio" 'BEGIN{print (r <= 2 ? "yes" : "no")}') |"
echo "| read+write peak RSS | ${rss_mb} MB | <= 500 MB | $(awk -v r="$rss_mb" 'BEGIN{print (r <= 500 ? "yes" : "no")}') |"
