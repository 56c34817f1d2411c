#!/bin/bash
# Runs each libFuzzer binary briefly over a copy of its seed corpus.
# Usage: scripts/fuzz-smoke.sh BIN...    (make fuzz-smoke passes build/fuzz/*)
# Seeds: tests/fuzz/seeds/<name>/ where <name> is the binary's basename. They
# are copied into a temporary corpus; nothing is ever written into the repo.
# Environment: FUZZ_SECONDS (default 20) per fuzzer.
# Prints one line per fuzzer, then "fuzz-smoke: N passed, N failed"; exits
# non-zero when any fuzzer crashed, leaked, timed out or hit UB.
set -uo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
seconds=${FUZZ_SECONDS:-20}
passed=0
failed=0

if [ $# -eq 0 ]; then
	echo "fuzz-smoke: warning: no fuzzer binaries given (usage: $0 FUZZER_BINARY...)" >&2
	echo "fuzz-smoke: 0 passed, 0 failed"
	exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/erpscope-fuzz.XXXXXX")
keep=0
cleanup() { [ "$keep" = 1 ] || rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# Undefined behaviour is a failure too, not a message in passing.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1}

for bin in "$@"; do
	name=$(basename "$bin")
	if [ ! -x "$bin" ]; then
		echo "$name: FAIL (no executable at $bin)"
		failed=$((failed + 1))
		continue
	fi
	corpus=$work/$name/corpus
	artifacts=$work/$name/artifacts
	mkdir -p "$corpus" "$artifacts"
	seeds=$here/tests/fuzz/seeds/$name
	nseeds=0
	if [ -d "$seeds" ]; then
		find "$seeds" -type f -exec cp -t "$corpus" -- {} + 2>/dev/null
		nseeds=$(find "$corpus" -type f | wc -l)
	else
		echo "$name: warning: no seed corpus at tests/fuzz/seeds/$name/" >&2
	fi
	log=$work/$name/log
	"$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix="$artifacts/" -print_final_stats=1 \
		"$corpus" >"$log" 2>&1 </dev/null
	rc=$?
	runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -n1)
	crashes=$(find "$artifacts" -type f | wc -l)
	if [ "$rc" -eq 0 ] && [ "$crashes" -eq 0 ] && [ -n "$runs" ]; then
		echo "$name: pass (${runs} runs in ${seconds}s, ${nseeds} seeds)"
		passed=$((passed + 1))
	else
		keep=1
		echo "$name: FAIL (exit $rc, ${crashes} crash file(s))"
		echo "---- $name: the report (full log: $log)" >&2
		grep -m1 -A30 -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|deadly signal' \
			"$log" >&2 || tail -n 30 "$log" >&2
		echo "----" >&2
		for f in "$artifacts"/*; do
			[ -f "$f" ] && echo "  reproduce: $bin $f" >&2
		done
		failed=$((failed + 1))
	fi
done

[ "$keep" = 1 ] && echo "fuzz-smoke: logs and crash inputs kept in $work" >&2
echo "fuzz-smoke: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
