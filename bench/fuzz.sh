#!/usr/bin/env bash
# Fuzz benchmark: runs every Jazzer fuzz target under libFuzzer, one after another (they share the machine), for
# RUNS executions each or until MAX_SECONDS, and prints a Markdown table: target, executions, wall time,
# executions per second, corpus size, findings. Exit code 1 when any target has a finding, 0 otherwise.
#
# Usage: bench/fuzz.sh [RUNS] [MAX_SECONDS] [FILTER]
#   RUNS         executions per target (default 1000000)
#   MAX_SECONDS  wall-time cap per target (default 1800); a capped target reports the executions it reached
#   FILTER       run only targets whose "Class.method" contains this text (default: all)
#   env: KILN_FUZZ_DIR (default ~/.cache/kiln/fuzz): the generated corpus per target (kept between runs, never
#        committed) and findings/<target>/ with each crashing input and its stack trace (log.txt);
#        KILN_FUZZ_XMX (default 2g): heap of the fuzzing JVM (an OutOfMemoryError is a finding).
#
# How it runs: the @FuzzTest methods are the same ones the normal test suite runs in Jazzer's regression mode
# (each committed input under src/test/resources/<package>/<Class>Inputs/<method>/ once). Here Jazzer's own
# driver (com.code_intelligence.jazzer.Jazzer, from the jazzer-junit test dependency; nothing is downloaded)
# runs one method with libFuzzer, seeded from that committed folder, mutating into the generated corpus.
# The contract every target checks: only a KilnException (bad input, unsupported) may come out of the code
# under test; any other exception, an error, an assertion the target makes, or a 30 s hang is a finding.
#
# A finding becomes a regression test: copy its crash file from findings/<target>/ into the target's
# src/test/resources/.../<Class>Inputs/<method>/ under a name that says what it is, fix the code, and the normal
# test suite replays it forever.
#
# Adding a target (e.g. the TorchScript reader): write one small class XyzFuzzTest next to the code under test
# with a @FuzzTest(maxDuration = "10m") void method(byte[] input) that lays the input out as files with
# dev.kiln.testdata.FuzzFolder, calls the reader and catches only KilnException (see OnnxReaderFuzzTest or
# InitImageFuzzTest); commit a few small seeds under src/test/resources/<package>/XyzFuzzTestInputs/method/;
# and add one line below: target MODULE fully.qualified.XyzFuzzTest method.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runs="${1:-1000000}"
max_seconds="${2:-1800}"
filter="${3:-}"
work="${KILN_FUZZ_DIR:-$HOME/.cache/kiln/fuzz}"
heap="${KILN_FUZZ_XMX:-2g}"
scratch="${TMPDIR:-/tmp}"
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
  scratch=/dev/shm
fi

TARGETS=()
# target MODULE CLASS METHOD [JAZZER_ARGS...]
target() { TARGETS+=("$*"); }
target graph  dev.kiln.graph.OnnxReaderFuzzTest                  model
target graph  dev.kiln.graph.OnnxReaderFuzzTest                  externalData
target runner dev.kiln.runner.scheduler.SchedulerConfigFuzzTest  config
target runner dev.kiln.runner.pipeline.PipelineFolderFuzzTest    configs
target runner dev.kiln.runner.tokenizer.ClipTokenizerFuzzTest    folder
target runner dev.kiln.runner.tokenizer.ClipTokenizerFuzzTest    prompt
# ImageIO is JDK code, which Jazzer leaves uninstrumented unless named: without it the fuzzer is blind (48 edges
# instead of ~1000) and mutates PNGs at random.
target runner dev.kiln.runner.image.InitImageFuzzTest            png \
  '--instrumentation_includes=com.sun.imageio.**:javax.imageio.**:dev.kiln.**'
target exporter dev.kiln.exporter.TorchScriptFuzzTest            pickle
target exporter dev.kiln.exporter.TorchScriptFuzzTest            archive

cd "$root"
set -f  # the Jazzer arguments hold glob patterns (com.sun.imageio.**) meant for Jazzer, not the shell
# test-compile builds common/testdata/graph/runner in the reactor (never `install`: ~/.m2 stays untouched);
# build-classpath writes each module's test classpath with the sibling modules as their target/classes.
mvn -B -q -o -pl graph,runner,exporter -am test-compile dependency:build-classpath \
  -Dmdep.outputFile=target/fuzz-classpath.txt -Dmdep.includeScope=test >&2

echo "# Kiln fuzz benchmark — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg), Jazzer $(ls ~/.m2/repository/com/code-intelligence/jazzer/ | tail -1), $(java -version 2>&1 | head -1)"
echo
echo "runs per target: $runs (cap ${max_seconds} s); corpus and findings: $work"
echo
echo "| target | executions | wall time | exec/s | corpus | findings |"
echo "|---|---:|---:|---:|---:|---:|"
total_findings=0
for entry in "${TARGETS[@]}"; do
  read -r module class method extra <<<"$entry"
  name="${class##*.}.$method"
  if [ -n "$filter" ] && [[ "$name" != *"$filter"* ]]; then
    continue
  fi
  seeds="$module/src/test/resources/$(dirname "${class//.//}")/${class##*.}Inputs/$method"
  corpus="$work/corpus/$name"
  findings="$work/findings/$name"
  mkdir -p "$corpus" "$findings"
  classpath="$module/target/test-classes:$module/target/classes:$(cat "$module/target/fuzz-classpath.txt")"
  log="$findings/log.txt"
  start=$(date +%s.%N)
  set +e
  # --keep_going: count distinct findings (deduplicated by stack trace) instead of stopping at the first.
  # The targets write each input as files: a memory file system keeps that from dominating the run.
  java -Xmx"$heap" -Xss4m -Djava.io.tmpdir="$scratch" -Dkiln.root="$root" -cp "$classpath" com.code_intelligence.jazzer.Jazzer \
    --target_class="$class" --target_method="$method" --keep_going=50 ${extra:-} \
    --reproducer_path="$findings" -artifact_prefix="$findings/" \
    -runs="$runs" -max_total_time="$max_seconds" -timeout=30 -rss_limit_mb=4096 -print_final_stats=1 \
    "$corpus" "$seeds" >"$log" 2>&1
  status=$?
  set -e
  end=$(date +%s.%N)
  executions=$(grep -oE '^Done [0-9]+ runs' "$log" | grep -oE '[0-9]+' || true)
  if [ -z "$executions" ]; then
    executions=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#' || true)
  fi
  executions="${executions:-0}"
  wall=$(echo "$end - $start" | bc)
  rate=$(echo "scale=0; $executions / $wall" | bc)
  count=$(find "$findings" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) | wc -l)
  if [ "$count" -eq 0 ] && [ "$status" -ne 0 ]; then
    count="? (exit $status, see $log)"
    total_findings=$((total_findings + 1))
  else
    total_findings=$((total_findings + count))
  fi
  printf '| %s | %s | %.0f s | %s | %s | %s |\n' "$name" "$executions" "$wall" "$rate" "$(ls "$corpus" | wc -l)" "$count"
done
echo
if [ "$total_findings" -gt 0 ]; then
  echo "findings: see $work/findings/<target>/ (crash-* inputs, log.txt with the stack traces)"
  exit 1
fi
echo "no findings"
