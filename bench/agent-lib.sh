# shellcheck shell=bash
# Shared by bench/memory.sh and bench/reload.sh (sourced, not run): build
# the node agent and the open loop, run in a private mount namespace on
# tmpfs mounts made here, start and stop the agent by PID, check that it
# marks nothing but those mounts, and read its memory and CPU from /proc.
#
# A script sourcing this sets NAME (a short name for its temporary
# directory and its environment variables) and calls `agent_outer "$@"`
# first: in the outer call it builds, then re-runs the script in a mount
# namespace of its own and exits; in that inner run it returns, with W
# (the temporary directory), BIN and T (the tmpfs the agent may mark)
# set and the tmpfs mounted.

log() { printf '[%s] %s\n' "$(date -u +%T)" "$*" >&2; }

agent_outer() {
	[ "$(id -u)" = 0 ] || { echo "run as root: fanotify permission events need CAP_SYS_ADMIN" >&2; exit 2; }
	local t
	for t in gcc go unshare timeout jq findmnt; do
		command -v "$t" >/dev/null || { echo "missing: $t" >&2; exit 2; }
	done
	if [ -n "${AGENTBENCH_INNER:-}" ]; then
		W=$AGENTBENCH_W BIN=$AGENTBENCH_W/bin T=$AGENTBENCH_W/t
		agent_inner_setup
		return 0
	fi
	local repo rc=0
	repo="$(cd "$(dirname "$0")/.." && pwd)"
	W="$(mktemp -d "/tmp/$NAME.XXXXXX")"
	mkdir -p "$W/bin"
	log "building into $W/bin (the node build: -tags nodeploy,nok8s)"
	gcc -O2 -Wall -o "$W/bin/openloop" "$repo/bench/openloop.c"
	(cd "$repo" && go build -tags nodeploy,nok8s -o "$W/bin/drmfilter" ./cmd/drmfilter)
	cp -r "$repo/examples" "$W/examples"
	AGENTBENCH_REV="$(cd "$repo" && git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
		AGENTBENCH_INNER=1 AGENTBENCH_W="$W" unshare -m --propagation private -- "$0" "$@" || rc=$?
	# the tmpfs lived only in the namespace, which is gone with it
	rm -rf "$W"
	exit $rc
}

TPID="" LPID="" HZ=$(getconf CLK_TCK)

agent_inner_setup() {
	mkdir -p "$T"
	mount -t tmpfs -o "size=${TMPFS_SIZE:-256m},nr_inodes=${TMPFS_INODES:-100000},mode=755" "$NAME" "$T"
	trap agent_cleanup EXIT
	trap 'exit 130' INT TERM
}

agent_cleanup() {
	agent_stop
	umount "$T" 2>/dev/null || umount -l "$T" 2>/dev/null || true
}

# agent_start POLICY MODE [extra flags]: start the agent under timeout,
# restricted to $T by markOnly, and wait until it says it is ready. Sets
# TPID, LPID and READY_S (seconds from start to ready).
agent_start() {
	local pol=$1 mode=$2 t0 t1
	shift 2
	cat >"$W/config.yaml" <<EOF
policies: [$pol]
markOnly: [$T]
EOF
	rm -f "$W/drm.sock"
	: >"$W/agent.log"
	t0=$(date +%s.%N)
	timeout "${AGENT_TIMEOUT:-1800}" "$BIN/drmfilter" run --config "$W/config.yaml" --mode "$mode" \
		--audit-file - --metrics-address - --status-socket "$W/drm.sock" --watch=false "$@" >"$W/agent.log" 2>&1 &
	TPID=$!
	for _ in $(seq 100); do LPID=$(pgrep -P "$TPID" | head -1 || true); [ -n "$LPID" ] && break; sleep 0.02; done
	[ -n "$LPID" ] || { log "the agent did not start"; agent_stop; return 1; }
	for _ in $(seq 6000); do
		if "$BIN/drmfilter" status --socket "$W/drm.sock" -o json >"$W/status.json" 2>/dev/null &&
			[ "$(jq -r .ready "$W/status.json")" = true ]; then
			t1=$(date +%s.%N)
			# shellcheck disable=SC2034 # read by the sourcing script
			READY_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}')
			agent_check_marks
			return 0
		fi
		kill -0 "$TPID" 2>/dev/null || break
		sleep 0.05
	done
	log "the agent did not become ready:"; cat "$W/agent.log" >&2
	return 1
}

# agent_check_marks aborts (stopping the agent) if any marked filesystem
# is not the test tmpfs or below it.
agent_check_marks() {
	"$BIN/drmfilter" status --socket "$W/drm.sock" -o json >"$W/status.json"
	local bad
	bad=$(jq -r --arg t "$T" '.markedFilesystems[] | select(. != $t and (startswith($t + "/") | not))' "$W/status.json")
	if [ -n "$bad" ] || [ "$(jq '.markedFilesystems | length' "$W/status.json")" = 0 ]; then
		log "ABORT: the agent marked [$(jq -c .markedFilesystems "$W/status.json")], expected only $T"
		agent_stop
		exit 1
	fi
}

agent_status() { "$BIN/drmfilter" status --socket "$W/drm.sock" -o json; }

agent_stop() {
	if [ -n "$LPID" ] && kill -0 "$LPID" 2>/dev/null; then kill -TERM "$LPID" 2>/dev/null || true
	# not known yet: timeout passes SIGTERM on to the agent
	elif [ -n "$TPID" ] && kill -0 "$TPID" 2>/dev/null; then kill -TERM "$TPID" 2>/dev/null || true; fi
	if [ -n "$TPID" ]; then
		for _ in $(seq 100); do kill -0 "$TPID" 2>/dev/null || break; sleep 0.1; done
		if kill -0 "$TPID" 2>/dev/null; then
			[ -n "$LPID" ] && kill -KILL "$LPID" 2>/dev/null
			kill -KILL "$TPID" 2>/dev/null || true
		fi
		wait "$TPID" 2>/dev/null || true
	fi
	TPID="" LPID=""
}

# cpu_s PID: utime+stime of every thread, in seconds.
cpu_s() {
	local s; s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
	s=${s##*) }
	# shellcheck disable=SC2086 # split into fields
	set -- $s
	awk -v t=$(( ${12} + ${13} )) -v hz="$HZ" 'BEGIN {printf "%.2f", t / hz}'
}

# mem_mib PID: "VmHWM VmRSS RssAnon RssFile" in MiB.
mem_mib() {
	awk '/^(VmHWM|VmRSS|RssAnon|RssFile):/ {v[$1] = $2} END {printf "%.1f %.1f %.1f %.1f", v["VmHWM:"]/1024, v["VmRSS:"]/1024, v["RssAnon:"]/1024, v["RssFile:"]/1024}' "/proc/$1/status"
}

load1() { cut -d' ' -f1 /proc/loadavg; }

# synth_policies N ROOT EXE VARIANT: YAML for N rules in the shapes of
# internal/policy's synthPolicies (department trees, per-project sources by
# extension, report globs, extension-only policies, one file type
# anywhere), every path under ROOT. The first rule of each policy allows
# EXE, so the open loop is allowed everywhere; VARIANT (a or b) changes
# the other executables so that two files differ in hash but not in shape.
synth_policies() {
	awk -v n="$1" -v root="$2" -v exe="$3" -v var="$4" 'BEGIN {
		rules = 0
		for (i = 0; rules < n; i++) {
			printf "---\napiVersion: drmfilter.dev/v1\nkind: ProtectionPolicy\nmetadata: {name: p%05d}\nspec:\n  files:\n", i
			if (i == 0) printf "    paths: [\"%s/**/*.kdbx\"]\n", root
			else if (i % 500 == 1) printf "    extensions: [secret%d]\n", i
			else if (i % 10 < 6) printf "    paths: [\"%s/srv/dept%d/**\"]\n    excludePaths: [\"%s/srv/dept%d/public/**\"]\n", root, i, root, i
			else if (i % 10 < 8) printf "    paths: [\"%s/home/*/projects/proj%d/**\"]\n    extensions: [go, py]\n", root, i
			else if (i % 10 < 9) printf "    paths: [\"%s/data/%d/*/reports%d/*.pdf\"]\n", root, i % 50, i
			else printf "    paths: [\"%s/var/lib/app%d/secrets/**\"]\n    filesystems: [ext4, xfs]\n", root, i
			print "  rules:"
			per = n - rules < 5 ? n - rules : 5
			for (j = 0; j < per; j++) {
				if (j == 0) printf "    - {name: app, operations: [open, read], subjects: {executables: [%s, /opt/app%s%d/bin/*]}, effect: allow}\n", exe, var, i
				else if (j == 1) printf "    - {name: svc, operations: [open], subjects: {users: [\"%d\"], container: none}, effect: allow}\n", 1000 + i % 100
				else if (j == 2) print "    - {name: pods, operations: [open], subjects: {kubernetes: {namespaces: [prod], podLabels: {matchLabels: {app: api}}}}, effect: audit}"
				else if (j == 3) print "    - {name: no-exec, operations: [exec], effect: deny}"
				else print "    - {name: deny, operations: [open], effect: deny}"
			}
			rules += per
		}
	}'
}

# synth_dirs ROOT COUNT: COUNT directories covered by synth_policies'
# department policies (ROOT/srv/deptI/docs), one a line.
synth_dirs() {
	awk -v root="$1" -v want="$2" 'BEGIN {
		for (i = 1; want > 0; i++) if (i % 500 != 1 && i % 10 < 6) { printf "%s/srv/dept%d/docs\n", root, i; want-- }
	}'
}

median() { sort -g | awk '{a[NR] = $1} END {if (NR == 0) print "-"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
range() { sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {printf "%s-%s", lo, hi}'; }
