#!/bin/sh
# SPDX-License-Identifier: MIT
# Builds the libFuzzer targets of fuzz/meson.build (meson setup -Dfuzz=true
# with CC=clang: libFuzzer + ASan + UBSan, the libraries instrumented too)
# and runs each for a bounded time:
#   fuzz/run.sh [SECONDS] [BUILD_DIR]
#   fuzz/run.sh --build-only [BUILD_DIR]
# SECONDS (per target) defaults to 15; BUILD_DIR to build-fuzz in the
# repository root (a relative BUILD_DIR is taken from the current
# directory). The targets are the executables fuzz/meson.build defines;
# each reads the committed seeds fuzz/corpus/NAME (NAME without "fuzz_")
# read-only, new inputs go to BUILD_DIR/corpus-NAME, crash artifacts to
# BUILD_DIR/NAME-*. Prints "fuzz: targets: NAME..." and one result line per
# target ("NAME: OK ..." or "NAME: FAILED ..."); exits non-zero if the build
# fails or a fuzzer finds a crash, leak or timeout. --build-only builds
# and prints "fuzz: built: NAME EXE" per target, runs nothing (for
# fuzz/campaign.sh).
set -eu

build_only=0
if [ "${1:-}" = --build-only ]; then
	build_only=1
	shift
	set -- 0 "$@"
fi
secs=${1:-15}
root=$(cd "$(dirname "$0")/.." && pwd)
if [ $# -ge 2 ]; then
	case $2 in
	/*) out=$2 ;;
	*) out=$(pwd)/$2 ;;
	esac
else
	out=$root/build-fuzz
fi
case $secs in
'' | *[!0-9]*)
	echo "fuzz: SECONDS must be a number, got '$secs'" >&2
	exit 2
	;;
esac

cd "$root"
mkdir -p "$out"
if [ -f "$out/build.ninja" ]; then
	setup="meson configure $out -Dfuzz=true -Dtests=false"
else
	setup="meson setup $out -Dfuzz=true -Dtests=false"
fi
# shellcheck disable=SC2086 # $setup is a word list without spaces in words
if ! CC=${CC:-clang} $setup >"$out.setup.log" 2>&1; then
	cat "$out.setup.log" >&2
	echo "fuzz: $setup failed (see $out.setup.log)"
	exit 1
fi
# the targets: executables defined in fuzz/meson.build
targets=$(meson introspect "$out" --targets | python3 -c '
import json, sys
for t in json.load(sys.stdin):
    if t["type"] == "executable" and t["defined_in"].endswith("/fuzz/meson.build"):
        print(t["name"], t["filename"][0])
')
if [ -z "$targets" ]; then
	echo "fuzz: no targets in fuzz/meson.build"
	exit 1
fi
# only the fuzzers and what they link (the rest of the tree is not built
# with clang here)
# shellcheck disable=SC2046 # one word per executable
if ! ninja -C "$out" -j2 $(echo "$targets" | while read -r _n f; do
	echo "${f#"$out"/}"
done) >"$out/build.log" 2>&1; then
	tail -n 40 "$out/build.log" >&2
	echo "fuzz: BUILD FAILED (see $out/build.log)"
	exit 1
fi
if [ "$build_only" = 1 ]; then
	echo "$targets" | sed 's/^/fuzz: built: /'
	exit 0
fi
# shellcheck disable=SC2046 # one line of names
echo "fuzz: targets:" $(echo "$targets" | cut -d' ' -f1)

failed=0
# run_target NAME EXE
run_target() {
	name=$1
	exe=$2
	log=$out/$name.log
	seeds=fuzz/corpus/${name#fuzz_}
	[ -d "$seeds" ] || seeds=
	mkdir -p "$out/corpus-$name"
	rc=0
	# shellcheck disable=SC2086 # $seeds is empty or one directory
	"$exe" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-max_len=65536 -print_final_stats=1 \
		-artifact_prefix="$out/$name-" \
		"$out/corpus-$name" $seeds >"$log" 2>&1 || rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" |
		tail -n 1)
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | sed 's/cov: //')
	if [ "$rc" -ne 0 ]; then
		artifact=$(grep -o "$out/$name-[a-z-]*-[0-9a-f]*" "$log" |
			tail -n 1 || true)
		echo "$name: FAILED (exit $rc) after ${runs:-?} runs;" \
			"artifact ${artifact:-none}; log $log"
		failed=1
		return
	fi
	if [ -z "$runs" ] || [ "$runs" = 0 ]; then
		echo "$name: FAILED: no executed inputs reported; log $log"
		failed=1
		return
	fi
	echo "$name: OK, $runs runs in ${secs}s, cov ${cov:-?}," \
		"no crashes (log $log)"
}

while read -r name exe; do
	run_target "$name" "$exe"
done <<EOF
$targets
EOF
exit "$failed"
