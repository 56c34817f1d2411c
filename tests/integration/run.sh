#!/bin/bash
# Runs every tests/integration/test_*.py with Debian's /usr/bin/python3.11 and
# counts them by exit status: 0 passed, 77 skipped, anything else failed.
# Under CI=true a skip is a failure. Last line:
#   integration: N passed, N failed, N skipped
# Environment: TESTS="test_cli test_http" runs only those; ERPSCOPE=path
# tests another binary; TEST_TIMEOUT (default 300) seconds per test.
set -uo pipefail
cd "$(dirname "$0")"

py=/usr/bin/python3.11
ci=0
case "${CI:-}" in true | 1 | yes) ci=1 ;; esac
timeout_s=${TEST_TIMEOUT:-300}
passed=0 failed=0 skipped=0
results=()
failures=() # the failed checks of failed tests, repeated at the end where a log's tail shows them
logdir=$(mktemp -d /tmp/erpscope-integ-XXXXXX)
trap 'rm -rf "$logdir"' EXIT

if [ -n "${TESTS:-}" ]; then
	tests=()
	for t in $TESTS; do tests+=("${t%.py}.py"); done
else
	tests=(test_*.py)
fi

if [ ! -x "$py" ]; then
	echo "integration: $py is missing (scripts/deps.sh installs python3.11)" >&2
	echo "integration: 0 passed, ${#tests[@]} failed, 0 skipped"
	exit 1
fi

for t in "${tests[@]}"; do
	echo
	echo "---- integration: $t"
	start=$(date +%s)
	# Own process group via setsid; timeout kills the whole test on a hang.
	timeout --kill-after=20 "$timeout_s" setsid -w "$py" -B -u "$t" 2>&1 | tee "$logdir/log"  # -B: no __pycache__ in the repo
	rc=${PIPESTATUS[0]}
	if [ "$rc" != 0 ] && [ "$rc" != 77 ]; then
		while IFS= read -r l; do failures+=("$t: ${l:0:400}"); done \
			< <(grep -E '\] FAIL |^Traceback|Error: ' "$logdir/log" | head -n 8)
	fi
	secs=$(($(date +%s) - start))
	case $rc in
	0)
		passed=$((passed + 1))
		results+=("PASS  $t (${secs}s)")
		;;
	77)
		if [ "$ci" = 1 ]; then
			failed=$((failed + 1))
			results+=("FAIL  $t (skipped, and CI=true forbids skips)")
		else
			skipped=$((skipped + 1))
			results+=("SKIP  $t (did not run: needs root and BPF)")
		fi
		;;
	124 | 137)
		failed=$((failed + 1))
		results+=("FAIL  $t (timed out after ${timeout_s}s)")
		;;
	*)
		failed=$((failed + 1))
		results+=("FAIL  $t (exit $rc, ${secs}s)")
		;;
	esac
done

echo
for r in "${results[@]}"; do echo "  $r"; done
if [ "${#failures[@]}" -gt 0 ]; then
	echo "failed checks:"
	for f in "${failures[@]}"; do echo "  $f"; done
fi
if [ "$skipped" -gt 0 ]; then
	echo "!!! $skipped integration test(s) SKIPPED: they did NOT run (not root / no BPF) !!!" >&2
fi
echo "integration: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
