#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A recorded, cumulative fuzz campaign: every target of fuzz/meson.build
# (or the ones named) is fuzzed in the ASan+UBSan libFuzzer build that
# fuzz/run.sh makes until its ledger reaches a budget of CPU-seconds,
# over as many runs (and sessions, and commits) as that takes; the table
# of docs/fuzzing.md shows what the ledgers add up to.
#
#   fuzz/campaign.sh [--budget SECS] [--per-run SECS] [--until HH:MM]
#                    [--state DIR] [--merge] [--build DIR] [--no-table]
#                    [TARGET...]
#
# --state   the campaign's working state, kept across runs and clones
#           (default $WISP_FUZZ_STATE, else /var/cache/wisp/fuzz-campaign):
#           per target NAME/corpus (the working corpus every run resumes
#           from), NAME/artifacts (crash-, leak-, timeout-, oom- inputs)
#           and NAME/*.log of the last run. The record is in the
#           repository, fuzz/ledger/ (a machine's cache does not outlive
#           it): NAME.tsv (one line per run: start, end, commit, CPU-s,
#           executions, crashes, note) and NAME.coverage (the last
#           -runs=0 pass over corpus and seeds); commit them with the
#           table.
# --budget  the cumulative CPU-seconds per target (default 1800). A run
#           gives a target only what its ledger still lacks; one whose
#           ledger has reached it is not fuzzed. CPU time, not wall time:
#           the machine may be shared, so run it as
#           `nice -n 19 fuzz/campaign.sh ... &`. The fuzzer is stopped
#           (SIGINT, libFuzzer prints its final stats) once its user+system
#           time reaches what is left.
# --per-run at most this many CPU-s per target in this run (default: all
#           it lacks), so that a short run reaches every target; with it,
#           a target another campaign has started since this one began
#           is skipped (campaigns side by side share out one round)
# --until   wall-clock limit (UTC, HH:MM today): a target still running
#           then is stopped (its CPU-s so far go into its ledger), the
#           ones not started are not run.
# --merge   afterwards, merge (-merge=1: only inputs adding coverage) the
#           working corpus into the committed corpus fuzz/corpus/NAME,
#           at most --merge-cap KiB of them (default 128), smallest first.
#           Without it the committed corpus is only read.
# --wall-factor N  stop a target after N times the CPU-s it was given in
#           wall time (default 10): some targets mostly wait on their
#           peer's bounded timeouts and would never use their CPU budget
# --build   the fuzz build directory (default build-fuzz in the repository;
#           campaigns may share one: their builds take turns)
# --merge-only  fuzz nothing: merge the working corpora, as --merge does
# --no-table  do not touch docs/fuzzing.md
# --table-only  fuzz nothing: write the table from the state's ledgers
# TARGET    fuzz_NAME or NAME; default all, those most exposed to a hostile
#           guest or peer first.
#
# Per run of a target the ledger gets the CPU-seconds used (getrusage of
# the fuzzer, through /usr/bin/time), the executions
# (stat::number_of_executed_units, summed over restarts) and the crashes
# (new artifacts; after one the fuzzer is restarted while budget remains,
# at most 5 times). Two campaigns sharing a state take turns per target
# (a lock in NAME/); one finding a target busy skips it. Exits 1 if any
# target crashed or could not run, 0 otherwise (also when time ran out:
# the table says what is missing).
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
budget=1800
per_run=
until_epoch=
merge=0
table=1
table_only=0
merge_only=0
wall_factor=10
merge_cap=128
out=$root/build-fuzz
state=${WISP_FUZZ_STATE:-/var/cache/wisp/fuzz-campaign}
ledgers=$root/fuzz/ledger
want=()
absdir() {
	case $1 in
	/*) echo "$1" ;;
	*) echo "$(pwd)/$1" ;;
	esac
}
while [ $# -gt 0 ]; do
	case $1 in
	--budget)
		budget=$2
		shift 2
		;;
	--per-run)
		per_run=$2
		shift 2
		;;
	--until)
		until_epoch=$(date -u -d "$2" +%s) || exit 2
		shift 2
		;;
	--state)
		state=$(absdir "$2")
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
		out=$(absdir "$2")
		shift 2
		;;
	--no-table)
		table=0
		shift
		;;
	--table-only)
		table_only=1
		shift
		;;
	-h | --help)
		sed -n '3,57p' "$0"
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
case $budget$wall_factor$merge_cap${per_run:-0} in
'' | *[!0-9]*)
	echo "campaign: --budget, --per-run, --wall-factor, --merge-cap: numbers" >&2
	exit 2
	;;
esac
[ -x /usr/bin/time ] || {
	echo "campaign: /usr/bin/time (Debian package time) is needed" >&2
	exit 2
}
mkdir -p "$state" "$ledgers" || exit 1
state=$(cd "$state" && pwd)

cd "$root" || exit 1
# write_table TARGET...: the table of docs/fuzzing.md, one row per
# target from its ledger and last coverage pass in the state.
write_table() {
	python3 - "$root/docs/fuzzing.md" "$ledgers" "$budget" "$@" <<'EOF'
import os, re, sys
doc, ledgers, budget, targets = (sys.argv[1], sys.argv[2], int(sys.argv[3]),
                                 sys.argv[4:])
start, end = "<!-- campaign-table-start -->", "<!-- campaign-table-end -->"
head = ("| target | CPU-s (budget) | executions | exec/s | cov / ft "
        "| corpus | crashes | runs | commits | last run (UTC) | note |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n")
text = open(doc).read()
a, b = text.index(start) + len(start), text.index(end)
rows = []
for n in sorted(targets):
    runs = []
    try:
        for line in open(os.path.join(ledgers, n + ".tsv")):
            if line.startswith("#") or not line.strip():
                continue
            runs.append(line.rstrip("\n").split("\t"))
    except FileNotFoundError:
        pass
    runs.sort(key=lambda r: r[0])  # by start: side-by-side runs append out of order
    cpu = sum(int(r[3]) for r in runs)
    execs = sum(int(r[4]) for r in runs)
    crashes = sum(int(r[5]) for r in runs)
    cov = ft = corp = "?"
    try:
        cov, ft, corp = open(os.path.join(ledgers, n + ".coverage")).read().split()[:3]
    except (FileNotFoundError, ValueError):
        pass
    eps = execs // cpu if cpu else 0
    # A line carried over from an earlier record stands for its runs
    # ("carried N runs" in its note).
    nruns = sum(int(m.group(1)) if (m := re.match(r"carried (\d+) runs",
                                                  r[6] if len(r) > 6 else ""))
                else 1 for r in runs)
    # A carried line's commit may be a range already.
    first = runs[0][2].split("..")[0] if runs else "-"
    final = runs[-1][2].split("..")[-1] if runs else "-"
    commits = first if first == final else f"{first}..{final}"
    last = runs[-1][1][:16].replace("T", " ") if runs else "-"
    note = ""
    if not runs:
        note = "NOT RUN"
    elif cpu < budget:
        note = f"SHORT: {budget - cpu} CPU-s missing"
    rows.append(f"| {n} | {cpu} ({budget}) | {execs} | {eps} | {cov} / {ft} "
                f"| {corp} | {crashes} | {nruns} | {commits} | {last} "
                f"| {note} |")
body = "\n" + head + "\n".join(rows) + "\n"
open(doc, "w").write(text[:a] + body + text[b:])
EOF
}
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
	fuzz_vhost_user_front fuzz_vhu_back fuzz_snapshot fuzz_virtio_iommu
	fuzz_vsock fuzz_virtio_net fuzz_mmio fuzz_standin fuzz_api)
order=()
for t in "${first[@]}"; do
	[ -n "${exe[$t]:-}" ] && order+=("$t")
done
for line in "${all[@]}"; do
	t=${line%% *}
	case " ${order[*]} " in *" $t "*) ;; *) order+=("$t") ;; esac
done
every=("${order[@]}")
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
if [ "$table_only" = 1 ]; then
	write_table "${every[@]}"
	exit
fi

hz=$(getconf CLK_TCK)
status=0
began=$(date -u +%FT%TZ)

# head_commit: the commit the build of fuzz/run.sh is of, now (a long
# campaign outlives commits: each target's run records its own).
head_commit() {
	local c
	c=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
	# the campaign's own record and merged inputs are data, not code
	git diff --quiet HEAD -- src fuzz ':!fuzz/ledger' ':!fuzz/corpus' \
		2>/dev/null || c="$c+dirty"
	echo "$c"
}

# cpu_of PID: user+system seconds (all threads, and waited-for children)
# of a live process, from /proc/PID/stat; empty when it is gone.
cpu_of() {
	local f
	f=$(cut -d')' -f2- "/proc/$1/stat" 2>/dev/null) || return 0
	# after "(comm)": state is field 1, utime 12, stime 13, cutime 14,
	# cstime 15
	echo "$f" | awk -v hz="$hz" '{ printf "%d\n", ($12+$13+$14+$15)/hz }'
}

# ledger_cpu NAME: the CPU-s its ledger adds up to.
ledger_cpu() {
	if [ -f "$ledgers/$1.tsv" ]; then
		awk -F'\t' '!/^#/ && NF >= 6 { s += $4 } END { print s + 0 }' \
			"$ledgers/$1.tsv"
	else
		echo 0
	fi
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
	rm -rf "$dir/merge"
	echo "campaign: $name: merged $total bytes of new inputs into $seeds"
}

# coverage NAME: a -runs=0 pass of the current build over the working
# corpus and the seeds, into fuzz/ledger/NAME.coverage ("cov ft corpus
# commit").
coverage() {
	local name=$1 bin=${exe[$1]} dir=$state/$1 seeds inited cov ft corp
	local commit
	commit=$(head_commit)
	seeds=fuzz/corpus/${name#fuzz_}
	[ -d "$seeds" ] || seeds=
	# shellcheck disable=SC2086 # $seeds is empty or one directory
	"$bin" -runs=0 -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
		"$dir/corpus" $seeds >"$dir/final.log" 2>&1
	inited=$(grep -E 'INITED|DONE' "$dir/final.log" | tail -n 1)
	cov=$(echo "$inited" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
	ft=$(echo "$inited" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
	corp=$(echo "$inited" | sed -n 's/.*corp: \([0-9]*\).*/\1/p')
	echo "${cov:-?} ${ft:-?} ${corp:-?} $commit" >"$ledgers/$name.coverage"
}

# run_target NAME LEFT: fuzz it for LEFT CPU-s (or until --until), then
# one ledger line for what it got.
run_target() {
	local name=$1 left=$2 bin=${exe[$1]} dir=$state/$1 used=0 runs=0
	local crashes=0 restarts=0 note='' seeds rc tpid fpid c rem log r
	local t0 ours wall_end wall start commit
	commit=$(head_commit)
	t0=$(date +%s)
	start=$(date -u +%FT%TZ)
	wall_end=$((t0 + left * wall_factor))
	seeds=fuzz/corpus/${name#fuzz_}
	[ -d "$seeds" ] || seeds=
	rm -f "$dir"/run-*.log "$dir"/time-*
	echo "campaign: $name: $left CPU-s (of what its budget lacks)," \
		"start $(date -u +%H:%M:%S)"
	while [ "$used" -lt "$left" ]; do
		if [ -n "$until_epoch" ] && [ "$(date +%s)" -ge "$until_epoch" ]; then
			note="stopped by --until"
			break
		fi
		if [ "$(date +%s)" -ge "$wall_end" ]; then
			note="wall cap"
			break
		fi
		rem=$((left - used))
		log=$dir/run-$restarts.log
		# Wall limit for libFuzzer itself: the wall cap, or the
		# --until limit if earlier (a starved fuzzer still ends).
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
			if [ "$c" -ge "$rem" ] ||
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
			note="stopped after 6 fuzzer runs"
			break
		fi
		# libFuzzer stopped by its own wall limit: out of time
		[ "$rc" = 0 ] && [ "$used" -lt "$left" ] && {
			note="wall limit: its wall cap or --until"
			break
		}
		[ "$(date +%s)" -ge "$wall_end" ] && [ "$used" -lt "$left" ] && {
			note="wall cap"
			break
		}
	done
	[ "$crashes" -gt 0 ] && status=1
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$start" "$(date -u +%FT%TZ)" \
		"$commit" "$used" "$runs" "$crashes" "$note" >>"$ledgers/$name.tsv"
	coverage "$name"
	if [ "$merge" = 1 ] && [ -n "$seeds" ]; then
		merge_into "$name" "$bin" "$seeds" "$dir/corpus" "$dir"
	fi
	echo "campaign: $name: $used CPU-s, $runs execs, crashes $crashes," \
		"now $(ledger_cpu "$name") of $budget CPU-s; coverage" \
		"$(cut -d' ' -f1-3 "$ledgers/$name.coverage")${note:+ - $note}"
}

if [ "$merge_only" = 1 ]; then
	for t in "${order[@]}"; do
		[ -d "$state/$t/corpus" ] && [ -d "fuzz/corpus/${t#fuzz_}" ] &&
			merge_into "$t" "${exe[$t]}" "fuzz/corpus/${t#fuzz_}" \
				"$state/$t/corpus" "$state/$t"
	done
	exit 0
fi

for t in "${order[@]}"; do
	dir=$state/$t
	mkdir -p "$dir/corpus" "$dir/artifacts"
	[ -f "$ledgers/$t.tsv" ] ||
		printf '# start\tend\tcommit\tcpu_s\texecutions\tcrashes\tnote\n' \
			>"$ledgers/$t.tsv"
	left=$((budget - $(ledger_cpu "$t")))
	if [ "$left" -le 0 ]; then
		echo "campaign: $t: budget reached ($(ledger_cpu "$t") CPU-s)"
		continue
	fi
	[ -n "$per_run" ] && [ "$per_run" -lt "$left" ] && left=$per_run
	if [ -n "$until_epoch" ] && [ "$(date +%s)" -ge "$until_epoch" ]; then
		echo "campaign: $t: not run (--until reached), $left CPU-s missing"
		continue
	fi
	# One campaign per target at a time: the ledger's sum is what the
	# next one trusts.
	exec {lk}>"$dir/lock"
	if ! flock -n "$lk"; then
		echo "campaign: $t: another campaign runs it, skipped"
		exec {lk}>&-
		continue
	fi
	# ISO times in UTC compare as strings.
	if [ -n "$per_run" ] && awk -F'\t' -v b="$began" \
		'!/^#/ && $1 >= b { f = 1 } END { exit !f }' "$ledgers/$t.tsv"; then
		echo "campaign: $t: had its turn from another campaign, skipped"
		exec {lk}>&-
		continue
	fi
	run_target "$t" "$left"
	exec {lk}>&-
done

if [ "$table" = 1 ]; then
	write_table "${every[@]}"
fi
exit "$status"
