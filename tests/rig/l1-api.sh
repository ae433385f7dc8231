# shellcheck shell=sh
# tests/rig/l1-api.sh - helpers for a scenario's own VMM command that
# drives wisp --api-sock: a script run under vmrun in L1 (busybox sh, its
# output the console log), VMM_CMD of snapshot-file/flow.sh and
# net-ratelimit/run.sh. run.sh installs it as /rig/l1-api.sh. The script
# sets S (wisp's API socket; curl's last answer is kept next to it, in
# curl.out) and LOG (the console log, vmrun's -o) before it calls them.

# say WORDS: "RIG-FLOW ok|fail KEY [detail]" and "RIG-FLOW val KEY VALUE"
# lines, which snapshot_flow_post (flow-l1.sh) turns into checks and values
say() { echo "RIG-FLOW $*"; }
# api KEY CURL-ARGS...: one API request that must answer 204: say ok KEY,
# else say fail KEY with the answer and exit 1
api() {
    k=$1; shift
    if curl --unix-socket "$S" -i "$@" > "${S%/*}/curl.out" 2>&1 &&
        head -n 1 "${S%/*}/curl.out" | grep -q '^HTTP/1.1 204'; then say ok "$k"
    else say fail "$k" "$(tr -d '\r' < "${S%/*}/curl.out" | tr '\n' ' ' | cut -c1-300)"; exit 1; fi
}
# api_sock: until wisp listens on $S, 30 s at most; 0 when it does
api_sock() {
    w=0
    while [ ! -S "$S" ] && [ $w -lt 300 ]; do usleep 100000; w=$((w + 1)); done
    [ -S "$S" ]
}
# count MARK: how many times the guest printed MARK so far
count() { tr -d '\r' < "$LOG" | grep -c "$1"; }
# until_n N MARK [TENTHS]: until the guest printed MARK N times (0) or
# TENTHS tenths of a second (default 1200) passed (1)
until_n() {
    w=0
    while [ "$(count "$2")" -lt "$1" ] && [ $w -lt "${3:-1200}" ]; do usleep 100000; w=$((w + 1)); done
    [ "$(count "$2")" -ge "$1" ]
}
