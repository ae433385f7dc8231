#!/usr/bin/env bash
# The whole wisp test suite (the README's test command; .ci/run calls it):
#   1. format check (clang-format, Linux kernel style)
#   2. ASan+UBSan build: cmocka unit tests and direct-KVM tests
#   3. optimized build: direct-KVM tests
#   4. libFuzzer targets, each for a bounded time
#   5. the nested rig: real Linux guests under wisp (tests/rig)
# Ends with one line "N passed, N failed" over everything it ran.
# WISP_SKIP_RIG=1 leaves out stage 5 (it says so); WISP_FUZZ_SECONDS sets
# the fuzzing time per target (default 30).
set -uo pipefail
cd "$(dirname "$0")/.."
top=$PWD

passed=0
failed=0
stage_fail=()

count() { # name passed failed
	echo "== $1: $2 passed, $3 failed"
	passed=$((passed + $2))
	failed=$((failed + $3))
	[ "$3" = 0 ] || stage_fail+=("$1")
}

scripts/deps.sh || { echo "deps: installation failed"; exit 1; }

# Guest kernels and rig tools (cached; a no-op when up to date). The
# direct-KVM suite uses the L2 kernel too (linux_direct).
rig_ready=0
if tests/rig/setup.sh; then rig_ready=1; else
	echo "rig setup failed"
	count rig-setup 0 1
fi

# 1. format
fmt_bad=$(git ls-files '*.c' '*.h' |
	xargs clang-format --dry-run 2>&1 | grep -c 'warning:' || true)
if [ "$fmt_bad" = 0 ]; then count format 1 0; else
	git ls-files '*.c' '*.h' | xargs clang-format --dry-run 2>&1 | head -20
	count format 0 1
fi

meson_suite() { # builddir label meson-args...
	local dir=$1 label=$2
	shift 2
	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" "$@" >"$dir.setup.log" 2>&1 ||
			{ cat "$dir.setup.log"; count "$label-build" 0 1; return; }
	fi
	if ! ninja -C "$dir" >"$dir.build.log" 2>&1; then
		tail -40 "$dir.build.log"
		count "$label-build" 0 1
		return
	fi
	meson test -C "$dir" --print-errorlogs --no-rebuild \
		--suite unit --suite kvm >"$dir.test.log" 2>&1
	local ok fail
	ok=$(grep -c '"result": "OK"' "$dir/meson-logs/testlog.json" || true)
	fail=$(grep -vc '"result": "OK"' "$dir/meson-logs/testlog.json" || true)
	grep -E '^ *[0-9]+/[0-9]+ ' "$dir.test.log" | grep -v ' OK ' || true
	[ "$fail" = 0 ] || tail -60 "$dir.test.log"
	count "$label" "$ok" "$fail"
}

# 2 + 3
meson_suite build-asan asan -Db_sanitize=address,undefined -Db_lundef=false
meson_suite build release -Dbuildtype=release

# 4
if [ -x fuzz/run.sh ]; then
	if fuzz/run.sh "${WISP_FUZZ_SECONDS:-30}" build-fuzz; then
		count fuzz 1 0
	else
		count fuzz 0 1
	fi
fi

# 5
if [ "${WISP_SKIP_RIG:-0}" = 1 ]; then
	echo "== rig: skipped (WISP_SKIP_RIG=1), not counted"
else
	rig_log=$top/build-rig.log
	: >"$rig_log"
	# The rig runs a static wisp inside L1 (no libraries to carry).
	if { [ -f build-rig/build.ninja ] ||
		meson setup build-rig -Dstatic=true -Dtests=false; } &&
		ninja -C build-rig >/dev/null && [ "$rig_ready" = 1 ]; then
		tests/rig/run.sh --wisp build-rig/src/cli/wisp 2>&1 |
			tee "$rig_log"
	fi
	line=$(grep -E '^rig: [0-9]+ passed, [0-9]+ failed' "$rig_log" | tail -1)
	if [ -n "$line" ]; then
		p=$(echo "$line" | sed -E 's/^rig: ([0-9]+) passed.*/\1/')
		f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
		count rig "$p" "$f"
	else
		echo "rig: no result line (setup or L1 boot failed)"
		count rig 0 1
	fi
fi

[ ${#stage_fail[@]} = 0 ] || echo "failed stages: ${stage_fail[*]}"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
