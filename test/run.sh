#!/bin/bash
# Runs every test: the cmocka unit tests, then the end-to-end tests on the
# local test network (started once here, stopped at the end). Each unit
# test case counts once; each end-to-end script counts once and exits 0
# (passed), 77 (skipped: it prints why) or anything else (failed). The last
# line is "N passed, N failed, N skipped".
set -u
cd "$(dirname "$0")/.."
top=$(pwd)
out="$top/build/test-out"
rm -rf "$out"
mkdir -p "$out"

passed=0
failed=0
skipped=0
failures=()

run_units() {
	local bin log p f
	for bin in build/san/test_*; do
		[ -x "$bin" ] || continue
		log="$out/$(basename "$bin").log"
		timeout 120 "$bin" >"$log" 2>&1
		p=$(grep -c '^\[       OK \]' "$log")
		f=$(grep -c '^\[  FAILED  \] [a-z_0-9]*$' "$log")
		if ! grep -q '^\[  PASSED  \]\|^\[  FAILED  \]' "$log"; then
			# The binary crashed before cmocka could report.
			f=$((f + 1))
		fi
		passed=$((passed + p))
		failed=$((failed + f))
		if [ "$f" -gt 0 ]; then
			failures+=("$(basename "$bin") (see $log)")
			grep -E '^\[  FAILED  \]|ERROR|error' "$log" | head -n 20
		fi
		echo "unit $(basename "$bin"): $p passed, $f failed"
	done
}

run_e2e() {
	local t name log rc
	export MXLOCK_TOP="$top" MXLOCK_BIN="$top/build/san/mxlock" TEST_OUT="$out"
	export TESTNET_DIR="$top/build/testnet"
	if ! scripts/testnet.sh start "$TESTNET_DIR" >"$out/testnet-start.log" 2>&1; then
		cat "$out/testnet-start.log"
		echo "e2e: the local test network did not start; every end-to-end test fails"
		for t in test/e2e/t_*.sh; do
			failed=$((failed + 1))
			failures+=("$(basename "$t" .sh) (no test network)")
		done
		return
	fi
	for t in test/e2e/t_*.sh; do
		name=$(basename "$t" .sh)
		log="$out/$name.log"
		timeout 300 bash "$t" >"$log" 2>&1 </dev/null
		rc=$?
		if [ "$rc" -eq 0 ]; then
			passed=$((passed + 1))
			echo "e2e $name: passed"
		elif [ "$rc" -eq 77 ]; then
			skipped=$((skipped + 1))
			echo "e2e $name: skipped: $(tail -n 1 "$log")"
		else
			failed=$((failed + 1))
			failures+=("$name (see $log)")
			echo "e2e $name: FAILED (exit $rc); last lines of $log:"
			tail -n 15 "$log" | sed 's/^/    /'
		fi
	done
	scripts/testnet.sh stop "$TESTNET_DIR" >"$out/testnet-stop.log" 2>&1
}

run_units
if [ "${MXLOCK_UNIT_ONLY:-0}" = 1 ]; then
	echo "end-to-end tests not run: MXLOCK_UNIT_ONLY=1"
else
	run_e2e
fi

if [ "${#failures[@]}" -gt 0 ]; then
	echo "failed:"
	printf '  %s\n' "${failures[@]}"
fi
if [ "$skipped" -gt 0 ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
