#!/bin/sh
# SPDX-License-Identifier: MIT
# Builds the libFuzzer targets with clang (libFuzzer + ASan + UBSan) and
# runs each for a bounded time:
#   fuzz_boot       the kernel loaders (corpus fuzz/corpus/boot)
#   fuzz_virtq_blk  virtqueue chain parsing and virtio-blk requests
#   fuzz_ioreq      a hostile IOREQ server's messages to the VMM side
#                   (corpus fuzz/corpus/ioreq)
#   fuzz_ioreq_server  a hostile VMM's messages and shared memory against
#                   the server library (corpus fuzz/corpus/ioreq_server)
#   fuzz/run.sh [SECONDS] [BUILD_DIR]
# SECONDS (per target) defaults to 30; BUILD_DIR to build-fuzz in the
# repository root (a relative BUILD_DIR is taken from the current
# directory). The committed seeds are read only; new inputs go to
# BUILD_DIR/corpus-NAME, crash artifacts to BUILD_DIR/NAME-*. Prints one
# result line per target; exits non-zero if a build fails or a fuzzer
# finds a crash, leak or timeout.
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
	echo "fuzz: SECONDS must be a number, got '$secs'" >&2
	exit 2
	;;
esac

cc=${CC:-clang}
mkdir -p "$out"
cd "$root"
common="src/mem/guest_mem.c src/util/err.c src/util/log.c"
boot_srcs="fuzz/fuzz_boot.c
src/boot/boot.c src/boot/bzimage.c src/boot/elf.c src/boot/pvh.c
src/boot/zeropage.c src/arch/x86/e820.c src/arch/x86/mptable.c $common"
virtq_blk_srcs="fuzz/fuzz_virtq_blk.c src/devices/blk/blk.c
src/virtio/virtio.c src/virtio/virtqueue.c $common"

ioreq_srcs="fuzz/fuzz_ioreq.c src/ioreq/vmm.c src/ioreq/msg.c
src/ioreq/server.c src/virtio/virtqueue.c src/bus/bus.c $common"

ioreq_server_srcs="fuzz/fuzz_ioreq_server.c src/ioreq/server.c
src/ioreq/msg.c $common"

failed=0

# run_target NAME CORPUS SRCS
run_target() {
	name=$1
	corpus=$2
	srcs=$3
	log=$out/$name.log
	mkdir -p "$out/corpus-$corpus"
	# shellcheck disable=SC2086 # $srcs is a word list
	if ! "$cc" -std=gnu17 -g -O1 -D_GNU_SOURCE -Isrc -Wall -Wextra \
		-Werror -Wno-unused-parameter \
		-fsanitize=fuzzer,address,undefined \
		-fno-sanitize-recover=undefined -pthread -o "$out/$name" \
		$srcs >"$out/build-$name.log" 2>&1; then
		cat "$out/build-$name.log" >&2
		echo "$name: BUILD FAILED (see $out/build-$name.log)"
		failed=1
		return
	fi
	rc=0
	"$out/$name" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-max_len=65536 -print_final_stats=1 \
		-artifact_prefix="$out/$name-" \
		"$out/corpus-$corpus" "fuzz/corpus/$corpus" >"$log" 2>&1 ||
		rc=$?
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
	echo "$name: OK, ${runs:-?} runs in ${secs}s, cov ${cov:-?}," \
		"no crashes (log $log)"
}

run_target fuzz_boot boot "$boot_srcs"
run_target fuzz_virtq_blk virtq_blk "$virtq_blk_srcs"
run_target fuzz_ioreq ioreq "$ioreq_srcs"
run_target fuzz_ioreq_server ioreq_server "$ioreq_server_srcs"
exit "$failed"
