#!/usr/bin/env bash
# Where drmfilter's time goes on the event path (issue 6). drmfilter has no
# pprof endpoint, so this samples it from outside with perf (Debian:
# apt-get install linux-perf), kernel and user stacks, while the workload of
# bench/fanotify-compare.sh opens covered files, and counts the agent's
# context switches and CPU per event. The no-op C listener is measured the
# same way for comparison.
#
#   sudo bench/profile-agent.sh [--files N] [--passes P] [--policy allowed|denied|uncovered]
#        [--execs M] [--out DIR]
#
# With --execs M the workload execs a static binary on the tmpfs M times
# instead of opening files (two permission events per exec).
#
# Writes DIR/perf-<listener>.data and DIR/report-<listener>.txt (flat, self
# time) and DIR/callers-<listener>.txt (with callers), and prints a summary.
# Runs in a mount namespace of its own, on a tmpfs it makes; marks nothing else.
set -euo pipefail
FILES=20000 PASSES=5 POLICY=allowed OUT="" EXECS=0
while [ $# -gt 0 ]; do
	case "$1" in
	--files) FILES=$2; shift 2 ;;
	--passes) PASSES=$2; shift 2 ;;
	--policy) POLICY=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	--execs) EXECS=$2; shift 2 ;;
	-h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "unknown argument: $1" >&2; exit 2 ;;
	esac
done
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 2; }
command -v perf >/dev/null || { echo "perf is not installed (apt-get install linux-perf)" >&2; exit 2; }

if [ -z "${FPROF_INNER:-}" ]; then
	repo="$(cd "$(dirname "$0")/.." && pwd)"
	W="$(mktemp -d /tmp/profile-agent.XXXXXX)"
	OUT=${OUT:-$W/out}
	mkdir -p "$W/bin" "$OUT"
	gcc -O2 -Wall -static -o "$W/bin/workload" "$repo/bench/workload.c"
	gcc -O2 -Wall -o "$W/bin/noop-listener" "$repo/bench/noop-listener.c"
	(cd "$repo" && go build -tags nodeploy,nok8s -o "$W/bin/drmfilter" ./cmd/drmfilter) # the packages' node build
	rc=0
	FPROF_INNER=1 FPROF_W="$W" unshare -m --propagation private -- "$0" --files "$FILES" --passes "$PASSES" \
		--policy "$POLICY" --out "$OUT" --execs "$EXECS" || rc=$?
	echo "profiles in $OUT"
	# keep OUT (it may be under W): remove only the rest
	find "$W" -mindepth 1 -maxdepth 1 ! -path "$OUT" -exec rm -rf {} +
	exit $rc
fi

W=$FPROF_W A=$W/a BIN=$W/bin HZ=$(getconf CLK_TCK)
TPID="" LPID=""
# child_of prints the PID of the listener that timeout (PID $1) started,
# waiting up to 5 s for it; pgrep's "none yet" must not end the script.
child_of() {
	local c
	for _ in $(seq 100); do
		c=$(pgrep -P "$1" | head -1 || true)
		[ -n "$c" ] && { echo "$c"; return 0; }
		sleep 0.05
	done
	echo "no listener process under PID $1" >&2
	return 1
}
stop() {
	# The listener by its PID; else timeout's, which passes SIGTERM on.
	if [ -n "$LPID" ]; then kill -TERM "$LPID" 2>/dev/null || true
	elif [ -n "$TPID" ]; then kill -TERM "$TPID" 2>/dev/null || true
	fi
	[ -n "$TPID" ] && wait "$TPID" 2>/dev/null || true
	TPID="" LPID=""
}
trap 'stop; umount "$A" 2>/dev/null || umount -l "$A"' EXIT
mkdir -p "$A"
mount -t tmpfs -o "size=$(( FILES * 8 / 1024 + 64 ))m" fprof "$A"
mkdir -p "$A/files" "$A/protected" "$A/bin"
"$BIN/workload" make "$A/files" "$FILES"
cp "$BIN/workload" "$A/bin/true"
case $POLICY in
uncovered) paths="\"$A/protected/**\"" rules="    - name: nobody
      operations: [open, exec]
      effect: deny" ;;
allowed) paths="\"$A/files/**\", \"$A/bin/**\"" rules="    - name: workload-may
      operations: [open, exec]
      subjects:
        executables: [\"$BIN/workload\"]
      effect: allow
    - name: everyone-else
      operations: [open, exec]
      effect: deny" ;;
denied) paths="\"$A/files/**\", \"$A/bin/**\"" rules="    - name: workload-may-not
      operations: [open, exec]
      subjects:
        executables: [\"$BIN/workload\"]
      effect: deny" ;;
*) echo "unknown policy $POLICY" >&2; exit 2 ;;
esac
cat >"$W/policy.yaml" <<EOF
apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata:
  name: bench-$POLICY
spec:
  files:
    paths: [$paths]
  rules:
$rules
EOF

ticks() { local s; s=$(cat "/proc/$1/stat"); s=${s##*) }; set -- $s; echo $(( ${12} + ${13} )); }
ctxsw() { # voluntary and involuntary switches of every thread
	cat /proc/"$1"/task/*/status 2>/dev/null | awk '/^voluntary_ctxt_switches/ {v += $2} /^nonvoluntary_ctxt_switches/ {n += $2} END {print v, n}'
}
profile() { # name
	local name=$1 c0 c1 s0 s1 out ev
	local cmd=("$BIN/workload" open "$A/files" "$FILES" "$PASSES")
	ev=$(( FILES * (PASSES + 1) ))
	if [ "$EXECS" -gt 0 ]; then
		name=$name-exec cmd=("$BIN/workload" exec "$A/bin/true" "$EXECS") ev=$(( EXECS * 2 ))
	fi
	c0=$(ticks "$LPID"); s0=$(ctxsw "$LPID")
	perf record -q -g -e cpu-clock -F 2000 -p "$LPID" -o "$OUT/perf-$name.data" -- \
		timeout 300 "${cmd[@]}" >"$W/wl.out" 2>/dev/null
	out=$(cat "$W/wl.out")
	c1=$(ticks "$LPID"); s1=$(ctxsw "$LPID")
	perf report -i "$OUT/perf-$name.data" --no-children --sort symbol --percent-limit 0.7 --stdio -g none 2>/dev/null \
		| grep -v '^$' >"$OUT/report-$name.txt" || true
	perf report -i "$OUT/perf-$name.data" --children --sort symbol --percent-limit 2 --stdio -g caller,0.5,callee,function,percent 2>/dev/null \
		>"$OUT/callers-$name.txt" || true
	set -- $s0 $s1
	echo "== $name: workload $out"
	awk -v c0="$c0" -v c1="$c1" -v hz="$HZ" -v ev="$ev" -v v=$(( $3 - $1 )) -v n=$(( $4 - $2 )) 'BEGIN {
		printf "   listener CPU %.1f µs per event, %.2f voluntary + %.2f involuntary context switches per event\n",
			(c1 - c0) / hz / ev * 1e6, v / ev, n / ev }'
	echo "   top symbols (self time, all threads):"
	grep -E '^ +[0-9]' "$OUT/report-$name.txt" | head -25 | sed 's/^/   /'
}

timeout 600 "$BIN/noop-listener" "$A" >"$W/noop.log" 2>&1 &
TPID=$!; LPID=$(child_of "$TPID")
profile noop
stop

timeout 600 "$BIN/drmfilter" run --policy "$W/policy.yaml" --audit-file - --metrics-address - \
	--status-socket "$W/drm.sock" --watch=false >"$W/drm.log" 2>&1 &
TPID=$!
for _ in $(seq 300); do
	"$BIN/drmfilter" status --socket "$W/drm.sock" -o json 2>/dev/null | grep -q '"ready": *true' && break
	sleep 0.1
done
LPID=$(child_of "$TPID")
profile "drmfilter-$POLICY"
stop
