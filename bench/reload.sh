#!/usr/bin/env bash
# Policy reload under load (issue 6): the node build of drmfilter enforces
# 10,000 generated rules over a tmpfs; bench/openloop.c opens and closes
# covered files it is allowed to open, for SECS seconds, and records the
# latency of every open+close. In the "reload" runs the script swaps the
# policy file between two 10,000-rule variants (same shape, different
# hash) and sends SIGHUP every EVERY seconds meanwhile; the "baseline" runs
# do the same without reloads. Target: no open waits longer than the
# per-event deadline (the agent's settings).
#
#   sudo bench/reload.sh [--runs K] [--secs S] [--every E] [--dirs D] [--files F] [--rules N]
#
# Defaults: 3 runs of each, 30 s, a reload every 2 s, 200 x 100 files,
# 10,000 rules. Runs alternate (baseline, reload; then reload, baseline...)
# and each starts a fresh agent. Runs in a mount namespace of its own; the
# agent has markOnly set to the tmpfs, and the script stops if it marks
# anything else.
set -euo pipefail
NAME=drm-reload
RUNS=3 SECS=30 EVERY=2 DIRS=200 FILES=100 RULES=10000
while [ $# -gt 0 ]; do
	case "$1" in
	--runs) RUNS=$2; shift 2 ;;
	--secs) SECS=$2; shift 2 ;;
	--every) EVERY=$2; shift 2 ;;
	--dirs) DIRS=$2; shift 2 ;;
	--files) FILES=$2; shift 2 ;;
	--rules) RULES=$2; shift 2 ;;
	-h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "unknown argument: $1" >&2; exit 2 ;;
	esac
done
export TMPFS_INODES=$(( DIRS * FILES + DIRS * 4 + 100000 )) TMPFS_SIZE=$(( DIRS * 2 + 256 ))m
# shellcheck source=bench/agent-lib.sh
. "$(dirname "$0")/agent-lib.sh"
agent_outer --runs "$RUNS" --secs "$SECS" --every "$EVERY" --dirs "$DIRS" --files "$FILES" --rules "$RULES"

RES=$W/results.tsv
: >"$RES"
mkdir -p "$W/pol"
for v in a b; do synth_policies "$RULES" "$T" "$BIN/openloop" "$v" >"$W/$v.yaml"; done
for v in a b; do "$BIN/drmfilter" policy check "$W/$v.yaml" >/dev/null; done
synth_dirs "$T" "$DIRS" >"$W/dirs.txt"
last=$(tail -1 "$W/dirs.txt" | sed -E 's#.*/dept([0-9]+)/docs#\1#')
grep -q "/srv/dept$last/\*\*" "$W/a.yaml" || { echo "$DIRS directories need more than $RULES rules" >&2; exit 2; }
xargs -a "$W/dirs.txt" -n 200 dirname | xargs mkdir -p
"$BIN/openloop" make "$W/dirs.txt" "$FILES" >&2

sum() { awk '{s += $1} END {print s + 0}'; }

# swap POLICY: replace the agent's policy file atomically
swap() { cp "$W/$1.yaml" "$W/pol/.next.yaml" && mv -f "$W/pol/.next.yaml" "$W/pol/current.yaml"; }

# duration_us D: a Go duration (250ms, 1s, 1.5s) in microseconds
duration_us() {
	awk -v d="$1" 'BEGIN {
		if (d ~ /ms$/) { sub(/ms$/, "", d); print d * 1000 }
		else if (d ~ /(us|µs)$/) { sub(/(us|µs)$/, "", d); print d + 0 }
		else if (d ~ /s$/) { sub(/s$/, "", d); print d * 1000000 }
		else print 0 }'
}

# reload_ms LOG: "median max" of the time from each SIGHUP to "policies
# reloaded", from the agent's log timestamps, in ms
reload_ms() {
	awk '
	function secs(line,   t, p) {
		match(line, /time=[^ ]+/); t = substr(line, RSTART + 5, RLENGTH - 5)
		split(substr(t, 12, 12), p, ":"); return p[1] * 3600 + p[2] * 60 + p[3]
	}
	/SIGHUP: reloading/ { h = secs($0) }
	/policies reloaded/ && h { d[++n] = (secs($0) - h) * 1000; h = 0 }
	END {
		if (!n) { print "- -"; exit }
		for (i = 2; i <= n; i++) { t = d[i]; for (j = i - 1; j >= 1 && d[j] > t; j--) d[j+1] = d[j]; d[j+1] = t }
		printf "%.0f %.0f\n", (n % 2 ? d[(n+1)/2] : (d[n/2] + d[n/2+1]) / 2), d[n]
	}' "$1"
}

# run MODE K: one run with a fresh agent; appends
# mode k ops fails rate p50 p99 p999 max max_at cpu reloads gen late failures reloadFailures load deadline_us reload_med_ms reload_max_ms hwm_mib
run() {
	local mode=$1 k=$2 c0 c1 wpid out sent=0 dl
	swap a
	agent_start "$W/pol/current.yaml" enforce
	dl=$(duration_us "$(jq -r .settings.deadline "$W/status.json")")
	[ "$k$mode" = 1baseline ] && log "  agent settings: $(jq -c .settings "$W/status.json")"
	c0=$(cpu_s "$LPID")
	timeout $(( SECS + 60 )) "$BIN/openloop" loop "$W/dirs.txt" "$FILES" "$SECS" >"$W/loop.out" &
	wpid=$!
	if [ "$mode" = reload ]; then
		local v=b
		while kill -0 "$wpid" 2>/dev/null; do
			sleep "$EVERY"
			kill -0 "$wpid" 2>/dev/null || break
			swap $v
			kill -HUP "$LPID"
			sent=$(( sent + 1 ))
			[ $v = b ] && v=a || v=b
		done
	fi
	wait "$wpid" || { log "openloop failed: $(cat "$W/loop.out")"; return 1; }
	c1=$(cpu_s "$LPID")
	local hwm; hwm=$(mem_mib "$LPID" | cut -d' ' -f1)
	# the status socket waits for a reload in progress (and gives up after
	# 2 s): ask until the last reload is done
	local tries=0
	until agent_status >"$W/status.json" 2>/dev/null; do
		tries=$(( tries + 1 ))
		[ $tries -lt 120 ] || { log "the agent's status did not answer for 2 minutes"; return 1; }
		sleep 1
	done
	[ $tries = 0 ] || log "  (status answered after $tries failed tries: a reload was in progress)"
	out=$(sed -E 's/[a-z0-9_]+=//g' "$W/loop.out")
	# shellcheck disable=SC2086 # split into fields
	set -- $out
	local late fails rf gen rl
	late=$(jq .counters.late "$W/status.json")
	fails=$(jq '[.counters | to_entries[] | select(.key | startswith("failure.")) | .value] | add' "$W/status.json")
	rf=$(jq .reloadFailures "$W/status.json")
	gen=$(jq .policy.generation "$W/status.json")
	rl=$(reload_ms "$W/agent.log")
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$mode" "$k" "$1" "$2" "$4" "$5" "$6" "$7" "$8" "$9" \
		"$(awk -v a="$c0" -v b="$c1" 'BEGIN {printf "%.2f", b - a}')" "$sent" "$gen" "$late" "$fails" "$rf" "$(load1)" "$dl" "${rl% *}" "${rl#* }" "$hwm" >>"$RES"
	log "  $mode run $k: $4 opens/s, p99 $6 µs, p99.9 $7 µs, max $8 µs at ${9}s (deadline $(( dl / 1000 )) ms), $2 refused; agent CPU $(awk -v a="$c0" -v b="$c1" 'BEGIN {printf "%.2f", b - a}') s; $sent SIGHUPs, generation $gen, reload ms (median max) $rl; late $late, failures $fails, reload failures $rf; VmHWM $hwm MiB; load $(load1)"
	if [ "$fails" != 0 ]; then log "  failure counters: $(jq -c '.counters | with_entries(select(.key | startswith("failure.")))' "$W/status.json")"; fi
	agent_stop
}

log "$RULES rules, $(( DIRS * FILES )) files in $DIRS directories; $RUNS runs of each, ${SECS}s, a reload every ${EVERY}s"
for k in $(seq "$RUNS"); do
	if [ $(( k % 2 )) = 1 ]; then run baseline "$k"; run reload "$k"; else run reload "$k"; run baseline "$k"; fi
done

# ---- summary
echo "Machine: $(nproc) CPUs, kernel $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg) at the end; drmfilter ${AGENTBENCH_REV:-?} (node build); $RULES rules, $(( DIRS * FILES )) files, ${SECS}s runs, SIGHUP every ${EVERY}s in the reload runs."
echo
echo "| runs | opens/s | p50 µs | p99 µs | p99.9 µs | max µs | deadline ms | agent CPU s | CPU s / 100k opens | reloads done | reload ms (median, max) | late | failure.* | reload failures | VmHWM MiB | load 1 min | target |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
for m in baseline reload; do
	col() { awk -F'\t' -v m="$m" -v i="$1" '$1 == m {print $i}' "$RES"; }
	cell() { printf '%s (%s)' "$(col "$1" | median)" "$(col "$1" | range)"; }
	dl=$(col 18 | head -1)
	worst=$(col 9 | sort -g | tail -1)
	printf '| %s x%s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s, %s | %s | %s | %s | %s | %s | %s |\n' "$m" "$(col 1 | wc -l)" \
		"$(cell 5)" "$(col 6 | median)" "$(cell 7)" "$(cell 8)" "$(cell 9)" "$(awk -v d="$dl" 'BEGIN {print d / 1000}')" \
		"$(cell 11)" "$(awk -F'\t' -v m="$m" '$1 == m {printf "%.2f\n", $11 / $3 * 100000}' "$RES" | median)" \
		"$(awk -F'\t' -v m="$m" '$1 == m {print $13 - 1}' "$RES" | median)" "$(col 19 | median)" "$(col 20 | sort -g | tail -1)" \
		"$(col 14 | sum)" "$(col 15 | sum)" "$(col 16 | sum)" "$(cell 21)" "$(cell 17)" \
		"$(awk -v w="$worst" -v d="$dl" 'BEGIN {printf "max %.0f ms vs deadline %.0f ms: %s", w / 1000, d / 1000, (w <= d ? "met" : "missed")}')"
done
echo
echo "Latency is one open+close by openloop, medians (lowest-highest) over the runs; the target column uses the worst run. late, failure.* and reload failures are summed over the runs. Reload time is from the agent's log: SIGHUP received to \"policies reloaded\"."
