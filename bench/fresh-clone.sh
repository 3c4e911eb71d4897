#!/usr/bin/env bash
# The fresh-machine claim, checked: clones this repository (its committed HEAD) into an empty temporary folder —
# no ../shared beside it, no build output, nothing but what git holds — and runs the README's two set-up
# commands there: `./kiln demo` and `./test` (the whole suite, `mvn -B verify`). Prints a Markdown table of wall
# time, CPU time and exit code per command, with the machine's load, and exits 1 if either command fails.
# Usage: bench/fresh-clone.sh [--keep]        (--keep leaves the clone and the logs for inspection)
#   env: KILN_FRESH_M2=1 also starts from an empty Maven repository (every dependency downloaded from Central,
#        ~600 MB); by default ~/.m2 is reused, which both commands only read (verify installs nothing).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
keep=0
[ "${1:-}" = "--keep" ] && keep=1
work="$(mktemp -d "${TMPDIR:-/tmp}/kiln-fresh-clone.XXXXXX")"
if [ "$keep" = 0 ]; then
  trap 'rm -rf "$work"' EXIT
fi
if [ -n "$(git -C "$root" status --porcelain --untracked-files=no)" ]; then
  echo "fresh-clone: note: uncommitted changes in $root are not part of the clone (it takes HEAD)" >&2
fi
git clone --quiet --no-hardlinks "$root" "$work/kiln"
if [ -e "$work/shared" ] || [ -e "$work/kiln/target" ] || [ -e "$work/kiln/cli/target" ]; then
  echo "fresh-clone: the clone is not fresh ($work holds more than the clone)" >&2
  exit 2
fi
repository="~/.m2 (reused)"
if [ "${KILN_FRESH_M2:-0}" = 1 ]; then
  export MAVEN_OPTS="${MAVEN_OPTS:-} -Dmaven.repo.local=$work/m2"
  repository="empty (KILN_FRESH_M2=1)"
fi

echo "# Fresh clone of $(git -C "$work/kiln" rev-parse --short HEAD) into $work/kiln — $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "$(nproc) cores, $(java -version 2>&1 | head -1), $(mvn -B -v 2>/dev/null | head -1 | sed -e 's/\x1b\[[0-9;]*m//g' -e 's/ (.*//'), Maven repository: $repository"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); other engineers' builds share these cores"
echo
echo "| command | wall (s) | CPU user+sys (s) | load avg (1 min) after | exit |"
echo "|---|---:|---:|---:|---:|"
failed=0
run() {
  local name="$1"
  shift
  local log="$work/$(echo "$name" | tr -c 'a-zA-Z0-9' '-').log"
  local code=0 timing
  local TIMEFORMAT='%R %U %S'
  timing=$( { time (cd "$work/kiln" && "$@" >"$log" 2>&1) ; } 2>&1 ) || code=$?
  # On failure `time` still printed its line; the subshell's status is the command's.
  timing="$(echo "$timing" | tail -n 1)"
  read -r wall user system <<<"$timing"
  printf '| `%s` | %.1f | %.1f | %s | %d |\n' "$name" "$wall" "$(echo "$user + $system" | bc)" \
    "$(cut -d' ' -f1 /proc/loadavg)" "$code"
  if [ "$code" != 0 ]; then
    failed=1
    echo "fresh-clone: '$name' exited $code; last lines of its log:" >&2
    tail -n 40 "$log" >&2
  fi
}
run "./kiln demo" ./kiln demo
run "./test" ./test
echo
count() { grep -ho "<testsuite [^>]*>" "$work"/kiln/*/target/surefire-reports/TEST-*.xml 2>/dev/null \
  | grep -o " $1=\"[0-9]*\"" | tr -dc '0-9\n' | awk '{sum += $1} END {print sum + 0}'; }
echo "tests run: $(count tests), failures: $(count failures), errors: $(count errors), skipped: $(count skipped);" \
  "demo.png: $(stat -c %s "$work/kiln/demo.png" 2>/dev/null || echo missing) bytes"
if [ "$keep" = 1 ]; then
  echo "kept: $work (logs: $work/*.log)"
fi
exit "$failed"
