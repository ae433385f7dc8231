#!/bin/sh
# SPDX-License-Identifier: MIT
# Builds the boot loader fuzz target with clang (libFuzzer + ASan + UBSan)
# and runs it for a bounded time.
#   fuzz/run.sh [SECONDS] [BUILD_DIR]
# SECONDS defaults to 30; BUILD_DIR to build-fuzz in the repository root
# (a relative BUILD_DIR is taken from the current directory). The committed
# seeds in fuzz/corpus/boot are read only; new inputs go to
# BUILD_DIR/corpus-boot, crash artifacts to BUILD_DIR/. Exits non-zero if
# the build fails or the fuzzer finds a crash, leak or timeout.
set -eu

secs=${1:-30}
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
	echo "fuzz_boot: SECONDS must be a number, got '$secs'" >&2
	exit 2
	;;
esac

cc=${CC:-clang}
mkdir -p "$out/corpus-boot"
cd "$root"
srcs="fuzz/fuzz_boot.c
src/boot/boot.c src/boot/bzimage.c src/boot/elf.c src/boot/pvh.c
src/boot/zeropage.c src/arch/x86/e820.c src/arch/x86/mptable.c
src/mem/guest_mem.c src/util/err.c src/util/log.c"

# shellcheck disable=SC2086 # $srcs is a word list
if ! "$cc" -std=gnu17 -g -O1 -D_GNU_SOURCE -Isrc -Wall -Wextra -Werror \
	-Wno-unused-parameter -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined -o "$out/fuzz_boot" $srcs \
	>"$out/build.log" 2>&1; then
	cat "$out/build.log" >&2
	echo "fuzz_boot: BUILD FAILED (see $out/build.log)"
	exit 1
fi

log=$out/fuzz.log
rc=0
"$out/fuzz_boot" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
	-max_len=65536 -print_final_stats=1 -artifact_prefix="$out/" \
	"$out/corpus-boot" fuzz/corpus/boot >"$log" 2>&1 || rc=$?

runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | sed 's/cov: //')
if [ "$rc" -ne 0 ]; then
	artifact=$(grep -o "$out/[a-z-]*-[0-9a-f]*" "$log" | tail -n 1 || true)
	echo "fuzz_boot: FAILED (exit $rc) after ${runs:-?} runs;" \
		"artifact ${artifact:-none}; log $log"
	exit 1
fi
echo "fuzz_boot: OK, ${runs:-?} runs in ${secs}s, cov ${cov:-?}," \
	"no crashes (log $log)"
