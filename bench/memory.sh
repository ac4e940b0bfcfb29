#!/usr/bin/env bash
# Peak memory of the agent (issue 6): VmHWM, VmRSS, RssAnon and RssFile
# of the node build of drmfilter, and its time from start to ready, in two
# cases:
#   examples  the policies of examples/, every protected path moved under
#             a tmpfs made here (target: peak RSS at most 25 MB);
#   10k       10,000 generated rules (the shapes of internal/policy's
#             benchmarks) over a tmpfs holding DIRS x FILES protected files,
#             1,000,000 by default, all in the agent's identity index
#             (target: at most 60 MB).
#
#   sudo bench/memory.sh [--runs K] [--dirs D] [--files F] [--rules N] [--only examples|10k]
#
# Runs in a mount namespace of its own; the agent runs in audit mode with
# markOnly set to the tmpfs, and the script stops if it marks anything
# else. Each case runs K times (default 3); medians and ranges are printed.
set -euo pipefail
NAME=drm-memory
RUNS=3 DIRS=1000 FILES=1000 RULES=10000 ONLY="examples,10k"
while [ $# -gt 0 ]; do
	case "$1" in
	--runs) RUNS=$2; shift 2 ;;
	--dirs) DIRS=$2; shift 2 ;;
	--files) FILES=$2; shift 2 ;;
	--rules) RULES=$2; shift 2 ;;
	--only) ONLY=$2; shift 2 ;;
	-h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "unknown argument: $1" >&2; exit 2 ;;
	esac
done
# tmpfs: about 1 KiB of kernel memory per empty file, none of it the agent's
export TMPFS_INODES=$(( DIRS * FILES + DIRS * 4 + 100000 )) TMPFS_SIZE=$(( DIRS * 2 + 256 ))m
# shellcheck source=bench/agent-lib.sh
. "$(dirname "$0")/agent-lib.sh"
agent_outer --runs "$RUNS" --dirs "$DIRS" --files "$FILES" --rules "$RULES" --only "$ONLY"

RES=$W/results.tsv
: >"$RES"

# measure CASE POLICY: one start of the agent; appends
# case run ready_s hwm rss anon file (3 s after ready) hwm_at_ready cpu_s indexed load
measure() {
	local c=$1 pol=$2 k=$3 m0 m1 idx
	agent_start "$pol" audit
	m0=$(mem_mib "$LPID")
	sleep 3 # let the collector return what the walk left
	agent_status >"$W/status.json"
	idx=$(jq .indexedFiles "$W/status.json")
	m1=$(mem_mib "$LPID")
	# shellcheck disable=SC2086 # split into fields
	set -- $m0 $m1
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "$k" "$READY_S" "$5" "$6" "$7" "$8" "$1" \
		"$(cpu_s "$LPID")" "$idx" "$(load1)" >>"$RES"
	log "  $c run $k: ready in ${READY_S}s, VmHWM $5 MiB, VmRSS $6 (anon $7, file $8), indexed $idx, CPU $(cpu_s "$LPID") s, load $(load1); rules $(jq .policy.rules "$W/status.json"), marked $(jq -c .markedFilesystems "$W/status.json")"
	agent_stop
}

if [[ ",$ONLY," == *,examples,* ]]; then
	# the examples, every host path they protect moved under $T/ex
	E=$T/ex
	mkdir -p "$W/ex-policies"
	for f in "$W"/examples/*.yaml; do
		sed -E "/^[[:space:]]*(paths|excludePaths):/ s#\"/#\"$E/#g" "$f" >"$W/ex-policies/$(basename "$f")"
	done
	if grep -hE '^[[:space:]]*(paths|excludePaths):' "$W"/ex-policies/*.yaml | grep -vq "\"$E/"; then
		echo "a policy path was not moved under $E" >&2; exit 1
	fi
	"$BIN/drmfilter" policy check "$W/ex-policies" >/dev/null
	for d in srv/finance srv/hr srv/src/acme/vendor etc/ssh etc/kubernetes/pki/etcd tmp/drmfilter-demo/secret \
		var/lib/kubelet/pods/p1/volumes/kubernetes.io~secret/s1; do
		mkdir -p "$E/$d"
		for i in $(seq 10); do : >"$E/$d/file$i.go"; : >"$E/$d/file$i.pdf"; : >"$E/$d/ssh_host_${i}_key"; : >"$E/$d/k$i.key"; done
	done
	log "examples: $(find "$W/ex-policies" -name '*.yaml' | wc -l) policy files under $E"
	for k in $(seq "$RUNS"); do measure examples "$W/ex-policies" "$k"; done
fi

if [[ ",$ONLY," == *,10k,* ]]; then
	synth_policies "$RULES" "$T" "$BIN/openloop" a >"$W/synth.yaml"
	"$BIN/drmfilter" policy check "$W/synth.yaml" >/dev/null
	synth_dirs "$T" "$DIRS" >"$W/dirs.txt"
	# make sure every directory is covered by a generated policy
	last=$(tail -1 "$W/dirs.txt" | sed -E 's#.*/dept([0-9]+)/docs#\1#')
	grep -q "/srv/dept$last/\*\*" "$W/synth.yaml" || { echo "$DIRS directories need more than $RULES rules" >&2; exit 2; }
	xargs -a "$W/dirs.txt" -n 200 dirname | xargs mkdir -p
	t0=$(date +%s)
	"$BIN/openloop" make "$W/dirs.txt" "$FILES" >&2
	log "10k: $RULES rules, $(( DIRS * FILES )) files made in $(( $(date +%s) - t0 )) s; tmpfs $(df -h --output=used "$T" | tail -1 | tr -d ' ') used, $(df -i "$T" | awk 'NR == 2 {print $3}') inodes"
	for k in $(seq "$RUNS"); do measure 10k "$W/synth.yaml" "$k"; done
fi

# ---- summary
echo "Machine: $(nproc) CPUs, kernel $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg) at the end; drmfilter ${AGENTBENCH_REV:-?} (node build)."
echo
echo "| case | runs | ready s | VmHWM MiB | VmRSS MiB | RssAnon MiB | RssFile MiB | CPU s (start + 3 s) | indexed files | load 1 min | target |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
for c in examples 10k; do
	grep -q "^$c	" "$RES" || continue
	col() { awk -F'\t' -v c="$c" -v i="$1" '$1 == c {print $i}' "$RES"; }
	cell() { printf '%s (%s)' "$(col "$1" | median)" "$(col "$1" | range)"; }
	tgt=25; [ "$c" = 10k ] && tgt=60
	hwm=$(col 4 | median)
	printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$c" "$(col 1 | wc -l)" "$(cell 3)" "$(cell 4)" "$(cell 5)" \
		"$(cell 6)" "$(cell 7)" "$(cell 9)" "$(col 10 | median)" "$(cell 11)" \
		"$(awk -v h="$hwm" -v t="$tgt" 'BEGIN {m = h * 1.048576; printf "%s MB: %.1f MB, %s", t, m, (m <= t ? "met" : "missed by " sprintf("%.1f MB", m - t))}')"
done
echo
echo "Medians (lowest-highest) of the runs. VmHWM is the peak over the agent's life (start, index walk, 3 s settled), VmRSS/RssAnon/RssFile after settling; MB = 10^6 bytes."
