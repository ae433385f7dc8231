#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A recorded fuzz campaign: every target of fuzz/meson.build (or the ones
# named) runs for a budget of CPU-seconds in the ASan+UBSan libFuzzer
# build that fuzz/run.sh makes, and the results go into the table of
# docs/fuzzing.md.
#
#   fuzz/campaign.sh [--budget SECS] [--until HH:MM] [--merge]
#                    [--build DIR] [--no-table] [TARGET...]
#
# --budget  CPU-seconds per target (default 1800). CPU time, not wall
#           time: the machine may be shared, so run it as
#           `nice -n 19 fuzz/campaign.sh ... &`. The fuzzer is stopped
#           (SIGINT, libFuzzer prints its final stats) once its user+system
#           time reaches what is left of the budget.
# --until   wall-clock limit (UTC, HH:MM today): a target still running
#           then is stopped, the ones not started are not run, and the
#           table says how much of its budget each target got.
# --merge   afterwards, merge (-merge=1: only inputs adding coverage) the
#           run's new inputs into the committed corpus fuzz/corpus/NAME,
#           at most --merge-cap KiB of them (default 128), smallest first.
#           Without it the committed corpus is only read.
# --wall-factor N  stop a target after N times its budget of wall time
#           (default 10): some targets mostly wait on their peer's bounded
#           timeouts and would never use their CPU budget
# --build   the fuzz build directory (default build-fuzz in the repository;
#           campaigns may share one: their builds take turns)
# --merge-only  fuzz nothing: merge what an earlier run left in
#           BUILD/campaign/NAME/corpus, as --merge does
# --no-table  do not touch docs/fuzzing.md
# --table-only FILE  only write the rows of earlier runs' results files
#           (BUILD/campaign/results-*.tsv; repeatable, later files win)
#           into docs/fuzzing.md
# TARGET    fuzz_NAME or NAME; default all, those most exposed to a hostile
#           guest or peer first.
#
# Per target it records the CPU-seconds used (getrusage of the fuzzer,
# through /usr/bin/time), the executions (stat::number_of_executed_units,
# summed over restarts), exec/s (per CPU-second), the coverage of the
# resulting corpus (cov/ft and corpus entries of a final -runs=0 pass over
# the working corpus and the seeds), and the crashes (crash-, leak-,
# timeout-, oom- artifacts; after one the fuzzer is restarted while budget
# remains, at most 5 times). Work files: BUILD/campaign/NAME/, the rows
# of each run in BUILD/campaign/results-TIME-PID.tsv. Exits 1 if
# any target crashed or could not run, 0 otherwise (also when time ran out:
# the table says so).
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
budget=1800
until_epoch=
merge=0
table=1
table_only=()
merge_only=0
wall_factor=10
merge_cap=128
out=$root/build-fuzz
want=()
while [ $# -gt 0 ]; do
	case $1 in
	--budget)
		budget=$2
		shift 2
		;;
	--until)
		until_epoch=$(date -u -d "$2" +%s) || exit 2
		shift 2
		;;
	--merge)
		merge=1
		shift
		;;
	--wall-factor)
		wall_factor=$2
		shift 2
		;;
	--merge-only)
		merge_only=1
		shift
		;;
	--merge-cap)
		merge_cap=$2
		shift 2
		;;
	--build)
		case $2 in
		/*) out=$2 ;;
		*) out=$(pwd)/$2 ;;
		esac
		shift 2
		;;
	--no-table)
		table=0
		shift
		;;
	--table-only)
		table_only+=("$2")
		shift 2
		;;
	-h | --help)
		sed -n '3,46p' "$0"
		exit 0
		;;
	-*)
		echo "campaign: unknown option $1" >&2
		exit 2
		;;
	*)
		want+=("fuzz_${1#fuzz_}")
		shift
		;;
	esac
done
case $budget$wall_factor$merge_cap in
'' | *[!0-9]*)
	echo "campaign: --budget, --wall-factor, --merge-cap: numbers" >&2
	exit 2
	;;
esac
[ -x /usr/bin/time ] || {
	echo "campaign: /usr/bin/time (Debian package time) is needed" >&2
	exit 2
}

cd "$root" || exit 1
# write_table RESULTS...: their rows replace those of the same targets.
write_table() {
	python3 - "$root/docs/fuzzing.md" "$@" <<'EOF'
import sys
doc, results = sys.argv[1], sys.argv[2:]
start, end = "<!-- campaign-table-start -->", "<!-- campaign-table-end -->"
head = ("| target | CPU-s (budget) | executions | exec/s | cov / ft "
        "| corpus | crashes | date | commit | note |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n")
text = open(doc).read()
a, b = text.index(start) + len(start), text.index(end)
rows = {}
for line in text[a:b].splitlines():
    if line.startswith("| fuzz_"):
        rows[line.split("|")[1].strip()] = line
for line in (l for res in results for l in open(res)):
    f = line.rstrip("\n").split("\t")
    n, used, bud, runs, eps, cov, ft, corp, cr, day, com, note = f
    rows[n] = (f"| {n} | {used} ({bud}) | {runs} | {eps} | {cov} / {ft} "
               f"| {corp} | {cr} | {day} | {com} | {note} |")
body = "\n" + head + "\n".join(rows[k] for k in sorted(rows)) + "\n"
open(doc, "w").write(text[:a] + body + text[b:])
EOF
}
if [ ${#table_only[@]} -gt 0 ]; then
	write_table "${table_only[@]}"
	exit
fi
# The build (and only the build) of fuzz/run.sh; meson refuses a second
# process in a build directory, so campaigns sharing one take turns.
mkdir -p "$out"
if ! flock "$out/campaign.lock" fuzz/run.sh --build-only "$out" \
	>"$out.campaign-build.log" 2>&1; then
	cat "$out.campaign-build.log" >&2
	exit 1
fi
mapfile -t all < <(sed -n 's/^fuzz: built: //p' "$out.campaign-build.log")
declare -A exe
for line in "${all[@]}"; do
	exe[${line%% *}]=${line#* }
done
# Most exposed first, then the rest in fuzz/meson.build's order.
first=(fuzz_virtq_blk fuzz_ioreq_server fuzz_ioreq fuzz_vhost_user_backend
	fuzz_vhost_user_front fuzz_snapshot fuzz_virtio_iommu fuzz_vsock
	fuzz_virtio_net fuzz_mmio)
order=()
for t in "${first[@]}"; do
	[ -n "${exe[$t]:-}" ] && order+=("$t")
done
for line in "${all[@]}"; do
	t=${line%% *}
	case " ${order[*]} " in *" $t "*) ;; *) order+=("$t") ;; esac
done
if [ ${#want[@]} -gt 0 ]; then
	for t in "${want[@]}"; do
		[ -n "${exe[$t]:-}" ] || {
			echo "campaign: no target $t in fuzz/meson.build" >&2
			exit 2
		}
	done
	sel=()
	for t in "${order[@]}"; do
		case " ${want[*]} " in *" $t "*) sel+=("$t") ;; esac
	done
	order=("${sel[@]}")
fi

hz=$(getconf CLK_TCK)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- src fuzz 2>/dev/null || commit="$commit+dirty"
mkdir -p "$out/campaign"
results=$out/campaign/results-$(date +%s)-$$.tsv
: >"$results"
status=0

# cpu_of PID: user+system seconds (all threads, and waited-for children)
# of a live process, from /proc/PID/stat; empty when it is gone.
cpu_of() {
	local f
	f=$(cut -d')' -f2- "/proc/$1/stat" 2>/dev/null) || return 0
	# after "(comm)": state is field 1, utime 12, stime 13, cutime 14,
	# cstime 15
	echo "$f" | awk -v hz="$hz" '{ printf "%d\n", ($12+$13+$14+$15)/hz }'
}

# merge_into NAME EXE SEEDS CORPUS DIR: the inputs of CORPUS that add
# coverage to SEEDS (-merge=1 into an empty directory picks the smallest
# input for each feature), at most $merge_cap KiB of them, smallest first,
# are copied into SEEDS. Committed files are never removed.
merge_into() {
	local name=$1 bin=$2 seeds=$3 corpus=$4 dir=$5 f sz total=0
	rm -rf "$dir/merge"
	mkdir -p "$dir/merge"
	if ! "$bin" -merge=1 -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
		"$dir/merge" "$seeds" "$corpus" >"$dir/merge.log" 2>&1; then
		echo "campaign: $name: merge failed, log $dir/merge.log"
		return
	fi
	# libFuzzer names inputs by their SHA-1: a name already in SEEDS is
	# an input already there.
	while read -r sz f; do
		[ -e "$seeds/$f" ] && continue
		[ $((total + sz)) -gt $((merge_cap * 1024)) ] && continue
		cp "$dir/merge/$f" "$seeds/$f"
		total=$((total + sz))
	done < <(cd "$dir/merge" && find . -type f -printf '%s %P\n' | sort -n)
	echo "campaign: $name: merged $total bytes of new inputs into $seeds"
}

# run_target NAME
run_target() {
	local name=$1 bin=${exe[$1]} dir=$out/campaign/$1 used=0 runs=0
	local crashes=0 restarts=0 note='' seeds rc tpid fpid c left log
	local t0 ours wall_end
	t0=$(date +%s)
	wall_end=$((t0 + budget * wall_factor))
	seeds=fuzz/corpus/${name#fuzz_}
	[ -d "$seeds" ] || seeds=
	mkdir -p "$dir/corpus" "$dir/artifacts"
	rm -f "$dir"/run-*.log "$dir"/time-*
	echo "campaign: $name: budget ${budget} CPU-s, start $(date -u +%H:%M:%S)"
	while [ "$used" -lt "$budget" ]; do
		if [ -n "$until_epoch" ] && [ "$(date +%s)" -ge "$until_epoch" ]; then
			note="stopped by --until"
			break
		fi
		if [ "$(date +%s)" -ge "$wall_end" ]; then
			note="wall cap: ${wall_factor}x its budget in wall time"
			break
		fi
		left=$((budget - used))
		log=$dir/run-$restarts.log
		# Wall limit for libFuzzer itself: the --until limit, or, with
		# none, 20 times the CPU left (a starved fuzzer still ends).
		wall=$((wall_end - $(date +%s)))
		if [ -n "$until_epoch" ] &&
			[ $((until_epoch - $(date +%s))) -lt "$wall" ]; then
			wall=$((until_epoch - $(date +%s)))
		fi
		[ "$wall" -lt 1 ] && wall=1
		# shellcheck disable=SC2086 # $seeds is empty or one directory
		/usr/bin/time -f '%U %S' -o "$dir/time-$restarts" \
			"$bin" -max_total_time="$wall" -timeout=10 \
			-rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
			-artifact_prefix="$dir/artifacts/" \
			"$dir/corpus" $seeds >"$log" 2>&1 &
		tpid=$!
		fpid=
		ours=0
		while kill -0 "$tpid" 2>/dev/null; do
			sleep 2
			[ -n "$fpid" ] || fpid=$(pgrep -P "$tpid" | head -n 1)
			[ -n "$fpid" ] || continue
			c=$(cpu_of "$fpid")
			[ -n "$c" ] || continue
			if [ "$c" -ge "$left" ] ||
				[ "$(date +%s)" -ge "$wall_end" ] ||
				{ [ -n "$until_epoch" ] &&
					[ "$(date +%s)" -ge "$until_epoch" ]; }; then
				ours=1
				kill -INT "$fpid" 2>/dev/null
				# libFuzzer's interrupt handler is not
				# async-signal-safe and can hang (seen: a
				# futex wait after the final stats): bounded.
				for _ in $(seq 30); do
					kill -0 "$fpid" 2>/dev/null || break
					sleep 1
				done
				if kill -0 "$fpid" 2>/dev/null; then
					kill -KILL "$fpid" 2>/dev/null
					note="hung after SIGINT, killed"
				fi
				break
			fi
		done
		rc=0
		wait "$tpid" || rc=$?
		# getrusage of the finished fuzzer, as /usr/bin/time saw it
		c=$(awk '/^[0-9.]+ [0-9.]+$/ { printf "%d\n", $1 + $2 + 0.5 }' \
			"$dir/time-$restarts" | tail -n 1)
		used=$((used + ${c:-0}))
		r=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" |
			tail -n 1)
		runs=$((runs + ${r:-0}))
		# 0: max_total_time; 72: a SIGINT (libFuzzer's interrupt code):
		# ours, or someone else's, which ends the target
		# 137 (via /usr/bin/time: 128 + SIGKILL): ours, after a hang
		[ "$rc" = 137 ] && [ "$ours" = 1 ] && rc=72
		case $rc in
		0) ;;
		72)
			if [ "$ours" = 0 ]; then
				note="interrupted from outside"
				break
			fi
			;;
		*)
			if grep -qE '^(==[0-9]+==ERROR|SUMMARY|==[0-9]+== ERROR: libFuzzer)' "$log"; then
				crashes=$((crashes + 1))
				echo "campaign: $name: FOUND (exit $rc):" \
					"$(grep -oE "$dir/artifacts/[a-z-]+-[0-9a-f]+" "$log" | tail -n 1)" \
					"log $log"
			else
				echo "campaign: $name: fuzzer exited $rc, log $log"
				note="fuzzer exited $rc"
				status=1
				break
			fi
			;;
		esac
		restarts=$((restarts + 1))
		if [ "$restarts" -gt 5 ]; then
			note="stopped after 6 runs"
			break
		fi
		# libFuzzer stopped by its own wall limit: out of time
		[ "$rc" = 0 ] && [ "$used" -lt "$budget" ] && {
			note="wall limit: its wall cap or --until"
			break
		}
		[ "$(date +%s)" -ge "$wall_end" ] && [ "$used" -lt "$budget" ] && {
			note="wall cap: ${wall_factor}x its budget in wall time"
			break
		}
	done
	[ "$crashes" -gt 0 ] && status=1
	# Coverage and size of what the run leaves: one pass over the corpus.
	# shellcheck disable=SC2086
	"$bin" -runs=0 -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
		"$dir/corpus" $seeds >"$dir/final.log" 2>&1
	local inited cov ft corp
	inited=$(grep -E 'INITED|DONE' "$dir/final.log" | tail -n 1)
	cov=$(echo "$inited" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
	ft=$(echo "$inited" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
	corp=$(echo "$inited" | sed -n 's/.*corp: \([0-9]*\).*/\1/p')
	if [ "$used" -lt "$budget" ]; then
		note="SHORT: got $used of $budget CPU-s${note:+ ($note)}"
	fi
	if [ "$merge" = 1 ] && [ -n "$seeds" ]; then
		merge_into "$name" "$bin" "$seeds" "$dir/corpus" "$dir"
	fi
	local eps=0
	[ "$used" -gt 0 ] && eps=$((runs / used))
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
		"$name" "$used" "$budget" "$runs" "$eps" "${cov:-?}" \
		"${ft:-?}" "${corp:-?}" "$crashes" "$(date -u +%F)" "$commit" \
		"$note" >>"$results"
	echo "campaign: $name: $used CPU-s, $runs execs ($eps/s)," \
		"cov ${cov:-?} ft ${ft:-?}, corpus ${corp:-?}, crashes $crashes" \
		"${note:+- $note}"
}

if [ "$merge_only" = 1 ]; then
	for t in "${order[@]}"; do
		[ -d "$out/campaign/$t/corpus" ] && [ -d "fuzz/corpus/${t#fuzz_}" ] &&
			merge_into "$t" "${exe[$t]}" "fuzz/corpus/${t#fuzz_}" \
				"$out/campaign/$t/corpus" "$out/campaign/$t"
	done
	exit 0
fi

for t in "${order[@]}"; do
	if [ -n "$until_epoch" ] && [ "$(date +%s)" -ge "$until_epoch" ]; then
		printf '%s\t0\t%s\t0\t0\t?\t?\t?\t0\t%s\t%s\t%s\n' "$t" \
			"$budget" "$(date -u +%F)" "$commit" \
			"NOT RUN: --until reached" >>"$results"
		echo "campaign: $t: not run (--until reached)"
		continue
	fi
	run_target "$t"
done

if [ "$table" = 1 ]; then
	write_table "$results"
fi
exit "$status"
