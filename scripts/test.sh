#!/usr/bin/env bash
# The whole wisp test suite (the README's test command; .ci/run calls it):
#   1. format check (clang-format, Linux kernel style)
#   2. ASan+UBSan build: cmocka unit tests and direct-KVM tests
#   3. optimized build: the same tests
#   4. libFuzzer targets, each for a bounded time (fuzz/run.sh)
#   5. the rig's self-test (tests/rig/selftest.sh: its verdicts on scripted
#      L1 consoles), then the nested rig: real Linux guests under wisp
# Every stage prints "== STAGE: N passed, N failed, N skipped"; the last
# line is "N passed, N failed, N skipped" over everything.
#
# What is counted: in the meson stages each cmocka test case (the unit
# binaries run with CMOCKA_MESSAGE_OUTPUT=TAP; their results are read from
# a fresh meson-logs/testlog.json) and each direct-KVM case (one meson test
# each); the number of meson tests must equal `meson test --list`, and a
# binary that meson saw fail without a failed case counts as one failure.
# A skip (cmocka skip(), exit 77) is counted as skipped, never as passed.
# A stage that cannot run (build failure, missing tool, no result) counts
# as failed, unless the user disabled it:
#   WISP_SKIP_FUZZ=1   leaves out stage 4 (it says so)
#   WISP_SKIP_RIG=1    leaves out stage 5 (it says so)
# WISP_FUZZ_SECONDS sets the fuzzing time per target (default 15: with 18
# targets the stage stays within about 8 minutes, build included).
# Exit status 0 only when nothing failed and nothing was skipped
# (WISP_ALLOW_SKIPS=1 accepts skips; they are still reported).
set -uo pipefail
cd "$(dirname "$0")/.."
top=$PWD

passed=0
failed=0
skipped=0
stage_fail=()
disabled=()

count() { # name passed failed skipped
	echo "== $1: $2 passed, $3 failed, $4 skipped"
	passed=$((passed + $2))
	failed=$((failed + $3))
	skipped=$((skipped + $4))
	[ "$3" = 0 ] || stage_fail+=("$1")
}

scripts/deps.sh || { echo "deps: installation failed"; exit 1; }

# Guest kernels and rig tools (cached; a no-op when up to date). The
# direct-KVM suite uses the L2 kernel too (linux_direct).
rig_ready=0
if tests/rig/setup.sh; then rig_ready=1; else
	echo "rig setup failed"
	count rig-setup 0 1 0
fi

# 1. format: every tracked C file, clang-format's own verdict
if ! command -v clang-format >/dev/null; then
	echo "format: clang-format not found (scripts/deps.sh installs it)"
	count format 0 1 0
else
	fmt_log=$(mktemp)
	fmt_bad=$(git ls-files '*.c' '*.h' | while read -r f; do
		clang-format --dry-run -Werror "$f" >>"$fmt_log" 2>&1 ||
			echo "$f"
	done)
	if [ -z "$fmt_bad" ]; then count format 1 0 0; else
		echo "format: not clang-formatted:" $fmt_bad
		head -20 "$fmt_log"
		count format 0 1 0
	fi
	rm -f "$fmt_log"
fi

# tally LOG SUITE_COUNT MESON_RC: prints "passed failed skipped" from a
# meson testlog.json; problems (a missing result, a crashed binary) go to
# stderr and count as failures.
tally() {
	python3 - "$@" <<'EOF'
import json, re, sys
log, want, meson_rc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
p = f = s = 0
def bad(msg):
    global f
    f += 1
    print("  FAIL " + msg, file=sys.stderr)
try:
    entries = [json.loads(l) for l in open(log) if l.strip()]
except (OSError, ValueError) as e:
    entries = []
    bad(f"cannot read {log}: {e}")
if len(entries) != want:
    bad(f"{len(entries)} test results in {log}, `meson test --list` has {want}")
for e in entries:
    name, res = e.get("name", "?"), e.get("result", "?")
    out = e.get("stdout") or ""
    # A cmocka binary prints one TAP plan per group it runs (virtio_blk
    # runs its cases once per I/O engine): the plans add up.
    plans = [int(n) for n in re.findall(r"^1\.\.(\d+)$", out, re.M)]
    if plans:  # a cmocka binary: count its cases
        cp = cf = cs = 0
        for m in re.finditer(r"^(ok|not ok) \d+( - | # SKIP )(\S+)", out, re.M):
            if m.group(1) == "ok":
                cp += 1
            elif "SKIP" in m.group(2):
                cs += 1
                print(f"  SKIP {name}: {m.group(3)}", file=sys.stderr)
            else:
                cf += 1
                print(f"  FAIL {name}: {m.group(3)}", file=sys.stderr)
        p, f, s = p + cp, f + cf, s + cs
        if cp + cf + cs != sum(plans):
            bad(f"{name}: {cp + cf + cs} case results, plans say {sum(plans)} (crashed?)")
        elif res not in ("OK", "EXPECTEDFAIL") and cf == 0:
            bad(f"{name}: meson says {res} but no case failed (exit after the cases: sanitizer report, leak?)")
    elif res == "OK":
        p += 1
    elif res == "SKIP":
        s += 1
        print(f"  SKIP {name}", file=sys.stderr)
    else:
        bad(f"{name}: {res}")
if meson_rc != 0 and f == 0:
    bad(f"meson test exited with status {meson_rc} but no failed test was found")
print(p, f, s)
EOF
}

meson_suite() { # builddir label meson-args...
	local dir=$1 label=$2
	shift 2
	if [ ! -f "$dir/build.ninja" ]; then
		mkdir -p "$dir"
		meson setup "$dir" "$@" >"$dir.setup.log" 2>&1 ||
			{ cat "$dir.setup.log"; echo "$label: meson setup failed, its tests did not run"; count "$label" 0 1 0; return; }
	fi
	if ! ninja -C "$dir" >"$dir.build.log" 2>&1; then
		tail -40 "$dir.build.log"
		echo "$label: build failed, its tests did not run"
		count "$label" 0 1 0
		return
	fi
	local want
	want=$(meson test -C "$dir" --list --no-rebuild --suite unit --suite kvm 2>/dev/null |
		grep -c . || true)
	if [ "${want:-0}" = 0 ]; then
		echo "$label: meson test --list shows no tests"
		count "$label" 0 1 0
		return
	fi
	# a fresh log: a stale one from an earlier run must not be counted
	local json=$dir/meson-logs/testlog.json rc=0
	rm -f "$json"
	CMOCKA_MESSAGE_OUTPUT=TAP meson test -C "$dir" --print-errorlogs \
		--no-rebuild --suite unit --suite kvm >"$dir.test.log" 2>&1 || rc=$?
	grep -E '^ *[0-9]+/[0-9]+ ' "$dir.test.log" | grep -v ' OK ' || true
	local res
	res=$(tally "$json" "$want" "$rc")
	# shellcheck disable=SC2086 # three numbers
	set -- $res
	if [ $# != 3 ]; then
		echo "$label: could not count the results"
		set -- 0 1 0
	fi
	[ "$2" = 0 ] || tail -60 "$dir.test.log"
	echo "$label: $want meson tests (cmocka binaries counted per case), meson test status $rc"
	count "$label" "$1" "$2" "$3"
}

# 2 + 3
meson_suite build-asan asan -Db_sanitize=address,undefined -Db_lundef=false
meson_suite build release -Dbuildtype=release

# 4. fuzz/run.sh prints "fuzz: targets: A B ..." then one line per target
if [ "${WISP_SKIP_FUZZ:-0}" = 1 ]; then
	echo "== fuzz: not run (disabled by WISP_SKIP_FUZZ=1), not counted"
	disabled+=(fuzz)
elif [ ! -x fuzz/run.sh ]; then
	echo "fuzz: fuzz/run.sh missing"
	count fuzz 0 1 0
else
	fuzz_log=$top/build-fuzz.log
	rc=0
	fuzz/run.sh "${WISP_FUZZ_SECONDS:-15}" build-fuzz 2>&1 | tee "$fuzz_log" || rc=$?
	targets=$(sed -n 's/^fuzz: targets: //p' "$fuzz_log" | tail -1)
	p=0 f=0
	for t in $targets; do
		if grep -q "^$t: OK" "$fuzz_log"; then p=$((p + 1)); else
			grep -q "^$t: " "$fuzz_log" || echo "fuzz: no result for $t"
			f=$((f + 1))
		fi
	done
	if [ -z "$targets" ]; then
		echo "fuzz: fuzz/run.sh listed no targets"
		f=$((f + 1))
	elif [ "$rc" != 0 ] && [ "$f" = 0 ]; then
		echo "fuzz: fuzz/run.sh exited with status $rc"
		f=1
	fi
	count fuzz "$p" "$f" 0
fi

# 5. the rig's own judging, without an L1 (seconds; runs even when the rig
# itself is disabled), then the rig
if [ "$rig_ready" = 1 ]; then
	rc=0
	tests/rig/selftest.sh >"$top/build-rig-selftest.log" 2>&1 || rc=$?
	grep -E '^(PASS|FAIL) ' "$top/build-rig-selftest.log" | grep -v '^PASS' || true
	p=$(grep -c '^PASS ' "$top/build-rig-selftest.log" || true)
	f=$(grep -c '^FAIL ' "$top/build-rig-selftest.log" || true)
	if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
		tail -20 "$top/build-rig-selftest.log"
		f=1
	fi
	count rig-selftest "$p" "$f" 0
else
	echo "rig-selftest: not run, the rig setup failed"
	count rig-selftest 0 1 0
fi
if [ "${WISP_SKIP_RIG:-0}" = 1 ]; then
	echo "== rig: not run (disabled by WISP_SKIP_RIG=1), not counted"
	disabled+=(rig)
else
	rig_log=$top/build-rig.log
	: >"$rig_log"
	rc=0
	want=$(tests/rig/run.sh --list 2>/dev/null | grep -c . || true)
	# The rig runs a static wisp inside L1 (no libraries to carry); the
	# api-* scenarios add the release build's dynamic wisp-api with its
	# libraries (the API's libraries do not link statically).
	if { [ -f build-rig/build.ninja ] ||
		meson setup build-rig -Dstatic=true -Dtests=false; } &&
		ninja -C build-rig >/dev/null && [ "$rig_ready" = 1 ]; then
		tests/rig/run.sh --wisp build-rig/src/cli/wisp \
			--wisp-api build/src/cli/wisp-api 2>&1 |
			tee "$rig_log" || rc=$?
	else
		rc=2
	fi
	line=$(grep -E '^rig: [0-9]+ passed, [0-9]+ failed' "$rig_log" | tail -1)
	if [ -n "$line" ]; then
		p=$(echo "$line" | sed -E 's/^rig: ([0-9]+) passed.*/\1/')
		f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
		if [ $((p + f)) != "$want" ]; then
			echo "rig: $((p + f)) scenario results, tests/rig/run.sh --list has $want"
			f=$((f + 1))
		elif [ "$rc" != 0 ] && [ "$f" = 0 ]; then
			echo "rig: tests/rig/run.sh exited with status $rc"
			f=1
		fi
		count rig "$p" "$f" 0
	else
		echo "rig: no result line (setup, build or L1 boot failed; status $rc)"
		count rig 0 1 0
	fi
fi

[ ${#disabled[@]} = 0 ] || echo "disabled by the user: ${disabled[*]}"
[ ${#stage_fail[@]} = 0 ] || echo "failed stages: ${stage_fail[*]}"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ] || exit 1
if [ "$skipped" != 0 ] && [ "${WISP_ALLOW_SKIPS:-0}" != 1 ]; then
	echo "skipped tests make the run fail (WISP_ALLOW_SKIPS=1 accepts them)"
	exit 1
fi
exit 0
