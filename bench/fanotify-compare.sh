#!/usr/bin/env bash
# Side-by-side cost of file-open interception (issue 6): no listener, a
# no-op fanotify listener in C, drmfilter (uncovered, covered-allowed,
# covered-denied) and fapolicyd, measured in one run, interleaved in pairs,
# each ratio taken against the no-listener run of the same pair.
#
#   sudo bench/fanotify-compare.sh [--files N] [--passes P] [--pairs K]
#        [--execs M] [--no-2proc] [--no-fapolicyd] [--no-spin]
#        [--only LIST] [--fs tmpfs,ext4] [--output FILE] [--raw FILE] [--workdir DIR]
#
# Everything runs in a mount namespace of its own: the files live on two
# tmpfs mounts made here (one marked by the listener under test, an
# identical copy for the no-listener runs), nothing else is marked, and
# every listener runs under `timeout` and is stopped by PID. --fs ext4 runs
# the same on two ext4 images on loop devices (without fapolicyd, which
# would have to watch every ext4 mount, / included). See
# docs/benchmarks.md for what each row means.
set -euo pipefail

FILES=20000 PASSES=3 PAIRS=5 EXECS=200 TWO=1 FAPO=1 SPIN=1
ONLY="" FSLIST=tmpfs OUTPUT="" RAW="" WORKBASE=/tmp SPIN_US=200 LISTENER_TIMEOUT=900
usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
while [ $# -gt 0 ]; do
	case "$1" in
	--files) FILES=$2; shift 2 ;;
	--passes) PASSES=$2; shift 2 ;;
	--pairs) PAIRS=$2; shift 2 ;;
	--execs) EXECS=$2; shift 2 ;;
	--no-2proc) TWO=0; shift ;;
	--no-fapolicyd) FAPO=0; shift ;;
	--no-spin) SPIN=0; shift ;;
	--only) ONLY=$2; shift 2 ;;
	--fs) FSLIST=$2; shift 2 ;;
	--output) OUTPUT=$2; shift 2 ;;
	--raw) RAW=$2; shift 2 ;;
	--workdir) WORKBASE=$2; shift 2 ;;
	-h|--help) usage 0 ;;
	*) echo "unknown argument: $1" >&2; usage ;;
	esac
done
[ "$(id -u)" = 0 ] || { echo "run as root: fanotify permission events need CAP_SYS_ADMIN" >&2; exit 2; }
for t in gcc go unshare nsenter timeout pgrep findmnt; do
	command -v "$t" >/dev/null || { echo "missing: $t" >&2; exit 2; }
done

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }

# ---------------------------------------------------------------- outer part
# Builds, then runs the measurements in a private mount namespace, and
# afterwards makes sure fapolicyd's configuration is back even if the inner
# part was killed.
if [ -z "${FCMP_INNER:-}" ]; then
	repo="$(cd "$(dirname "$0")/.." && pwd)"
	W="$(mktemp -d "$WORKBASE/fanotify-compare.XXXXXX")"
	case "$(findmnt -n -o FSTYPE --target "$W")" in
	tmpfs) echo "--workdir must not be on a tmpfs (fapolicyd's namespace detaches every other tmpfs)" >&2; rm -rf "$W"; exit 2 ;;
	esac
	mkdir -p "$W/bin"
	log "building into $W/bin"
	gcc -O2 -Wall -static -o "$W/bin/workload" "$repo/bench/workload.c"
	gcc -O2 -Wall -o "$W/bin/noop-listener" "$repo/bench/noop-listener.c"
	(cd "$repo" && go build -tags nodeploy,nok8s -o "$W/bin/drmfilter" ./cmd/drmfilter) # the packages' node build
	rev="$(cd "$repo" && git rev-parse --short HEAD 2>/dev/null || echo unknown)"
	rc=0
	FCMP_INNER=1 FCMP_W="$W" FCMP_REV="$rev" \
		unshare -m --propagation private -- "$0" --files "$FILES" --passes "$PASSES" --pairs "$PAIRS" \
		--execs "$EXECS" $([ $TWO = 1 ] || echo --no-2proc) $([ $FAPO = 1 ] || echo --no-fapolicyd) \
		$([ $SPIN = 1 ] || echo --no-spin) ${ONLY:+--only "$ONLY"} --fs "$FSLIST" ${OUTPUT:+--output "$OUTPUT"} ${RAW:+--raw "$RAW"} || rc=$?
	if [ -d "$W/fapolicyd-backup" ]; then
		log "restoring fapolicyd's configuration (the inner part did not)"
		rm -rf /etc/fapolicyd && cp -a "$W/fapolicyd-backup/etc" /etc/fapolicyd
		rm -rf /var/lib/fapolicyd && cp -a "$W/fapolicyd-backup/var" /var/lib/fapolicyd
	fi
	# the tmpfs mounts lived only in the namespace, which is gone
	rm -rf "$W"
	exit $rc
fi

# ---------------------------------------------------------------- inner part
W=$FCMP_W
A="" B=""   # the mount the listener under test marks, and the identical copy for the references
BIN=$W/bin
HZ=$(getconf CLK_TCK)
RESULTS=""
MOUNTS=()
LPID="" TPID="" FAPO_ACTIVE=0

cpu_ticks() { # utime+stime of a process, all threads
	local s; s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
	s=${s##*) }
	set -- $s
	echo $(( ${12} + ${13} ))
}
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

stop_listener() {
	if [ -n "$LPID" ] && kill -0 "$LPID" 2>/dev/null; then kill -TERM "$LPID" 2>/dev/null || true; fi
	if [ -n "$TPID" ]; then
		for _ in $(seq 100); do kill -0 "$TPID" 2>/dev/null || break; sleep 0.1; done
		kill -0 "$TPID" 2>/dev/null && kill -KILL "$TPID" 2>/dev/null
		wait "$TPID" 2>/dev/null || true
	fi
	LPID="" TPID=""
}

restore_fapolicyd() {
	[ -d "$W/fapolicyd-backup" ] || return 0
	rm -rf /etc/fapolicyd && cp -a "$W/fapolicyd-backup/etc" /etc/fapolicyd
	rm -rf /var/lib/fapolicyd && cp -a "$W/fapolicyd-backup/var" /var/lib/fapolicyd
	rm -rf "$W/fapolicyd-backup"
	log "fapolicyd's configuration restored"
}

cleanup() {
	stop_listener
	restore_fapolicyd
	local m
	for m in "${MOUNTS[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
	MOUNTS=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the files: two identical mounts of one filesystem type, and policies
setup_fs() { # tmpfs | ext4
	local fs=$1 m size_mb=$(( FILES * 8 / 1024 + 64 ))
	A=$W/$fs-a B=$W/$fs-b
	for m in "$A" "$B"; do
		mkdir -p "$m"
		case $fs in
		tmpfs) mount -t tmpfs -o "size=${size_mb}m,mode=755" fcmp "$m" ;;
		ext4)
			truncate -s "$(( size_mb * 2 ))M" "$m.img"
			mkfs.ext4 -q -F -N $(( FILES + 1024 )) "$m.img"
			mount -o loop "$m.img" "$m" ;;
		*) echo "unknown filesystem type $fs" >&2; exit 2 ;;
		esac
		MOUNTS+=("$m")
		mkdir -p "$m/files" "$m/bin" "$m/protected"
		"$BIN/workload" make "$m/files" "$FILES"
		cp "$BIN/workload" "$m/bin/true"
	done
	log "made $FILES files of 1 KiB on two $fs mounts ($A, $B)"
	write_policies
}
teardown_fs() {
	local m
	for m in "${MOUNTS[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; rm -f "$m.img"; done
	MOUNTS=()
}

# --- policies
policy() { # name, paths, rules
	cat >"$W/$1.yaml" <<EOF
apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata:
  name: bench-$1
spec:
  files:
    paths: [$2]
  rules:
$3
EOF
}
write_policies() {
policy uncovered "\"$A/protected/**\"" "    - name: nobody
      operations: [open, exec]
      effect: deny"
policy allowed "\"$A/files/**\", \"$A/bin/**\"" "    - name: workload-may
      operations: [open, exec]
      subjects:
        executables: [\"$BIN/workload\"]
      effect: allow
    - name: everyone-else
      operations: [open, exec]
      effect: deny"
policy denied "\"$A/files/**\", \"$A/bin/**\"" "    - name: workload-may-not
      operations: [open, exec]
      subjects:
        executables: [\"$BIN/workload\"]
      effect: deny"
for p in uncovered allowed denied; do "$BIN/drmfilter" policy check "$W/$p.yaml" >/dev/null; done
}

# --- fapolicyd: possible?
FAPO_SKIP=""
if [ $FAPO = 1 ]; then
	if ! command -v fapolicyd >/dev/null && [ ! -x /usr/sbin/fapolicyd ]; then
		FAPO_SKIP="fapolicyd is not installed (apt-get install fapolicyd)"
	elif pgrep -x fapolicyd >/dev/null; then
		FAPO_SKIP="a fapolicyd is already running on this machine; not starting a second one"
	fi
else
	FAPO_SKIP="--no-fapolicyd"
fi

# --- listeners
wait_for() { # file pattern seconds
	local i
	for i in $(seq $(( $3 * 10 ))); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		kill -0 "$TPID" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}
child_of() { local c i; for i in $(seq 50); do c=$(pgrep -P "$1" | head -1 || true); [ -n "$c" ] && { echo "$c"; return; }; sleep 0.05; done; }

NSENTER=()  # how the workload enters the listener's namespace (fapolicyd only)
start_listener() { # config
	local cfg=$1 lg=$W/$1.log
	NSENTER=()
	: >"$lg"
	case $cfg in
	none) return 0 ;;
	noop|noop-spin)
		local spin=0; [ $cfg = noop-spin ] && spin=$SPIN_US
		timeout "$LISTENER_TIMEOUT" "$BIN/noop-listener" "$A" "$spin" >"$lg" 2>&1 &
		TPID=$!; LPID=$(child_of $TPID)
		wait_for "$lg" '^ready' 10 || { cat "$lg" >&2; return 1; } ;;
	drm-*)
		local pol=${cfg#drm-}
		rm -f "$W/drm.sock"
		timeout "$LISTENER_TIMEOUT" "$BIN/drmfilter" run --policy "$W/$pol.yaml" --audit-file - \
			--metrics-address - --status-socket "$W/drm.sock" --watch=false ${DRMFILTER_FLAGS:-} >"$lg" 2>&1 &
		TPID=$!; LPID=$(child_of $TPID)
		local i ok=0
		for i in $(seq 300); do
			if "$BIN/drmfilter" status --socket "$W/drm.sock" -o json 2>/dev/null | grep -q '"ready": *true'; then ok=1; break; fi
			kill -0 "$TPID" 2>/dev/null || break
			sleep 0.1
		done
		[ $ok = 1 ] || { cat "$lg" >&2; return 1; } ;;
	fapolicyd)
		# its own namespace, in which every tmpfs but $A is detached
		unshare -m --propagation private -- bash -c '
			findmnt -rn -t tmpfs -o TARGET | sort -r | while read -r m; do
				[ "$m" = "$1" ] || umount -l "$m" 2>/dev/null || true
			done
			exec timeout "$2" fapolicyd --debug-deny' fcmp "$A" "$LISTENER_TIMEOUT" >"$lg" 2>&1 &
		TPID=$!
		wait_for "$lg" 'Starting to listen' 60 || { cat "$lg" >&2; return 1; }
		LPID=$(pgrep -P "$TPID" -x fapolicyd | head -1)
		[ -n "$LPID" ] || return 1
		NSENTER=(nsenter -t "$LPID" -m --) ;;
	esac
}

# a run of the workload; prints "rate fails ops"
run_wl() {
	local out
	out=$("${@}") || { echo "workload failed: $*" >&2; return 1; }
	set -- $out
	echo "${4#rate=} ${2#fails=} ${1#ops=}"
}

measure() { # round config set
	local k=$1 cfg=$2 set=$3 dir=$A ref val c0 c1 cmd=() refcmd=() ev
	case $set in
	open1) cmd=("$BIN/workload" open "$A/files" "$FILES" "$PASSES" 1); ev=$(( FILES * (PASSES + 1) )) ;;
	open2) cmd=("$BIN/workload" open "$A/files" "$FILES" "$PASSES" 2); ev=$(( FILES * (PASSES + 1) )) ;;
	exec)  cmd=("$BIN/workload" exec "$A/bin/true" "$EXECS"); ev=$(( EXECS * 2 )) ;;
	esac
	refcmd=("${cmd[@]//$A/$B}")
	if [ "$cfg" = none ]; then cmd=("${refcmd[@]}"); fi
	local t=$(( LISTENER_TIMEOUT / 3 ))
	if [ $(( k % 2 )) = 1 ]; then ref=$(run_wl timeout $t "${refcmd[@]}"); fi
	c0=0; [ -n "$LPID" ] && c0=$(cpu_ticks "$LPID")
	val=$(run_wl timeout $t "${NSENTER[@]}" "${cmd[@]}")
	c1=0; [ -n "$LPID" ] && c1=$(cpu_ticks "$LPID")
	if [ $(( k % 2 )) = 0 ]; then ref=$(run_wl timeout $t "${refcmd[@]}"); fi
	set -- $ref $val
	# round config set ref_rate rate fails ops cpu_seconds events
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$k" "$cfg" "$set" "$1" "$4" "$5" "$6" \
		"$(awk -v a="$c0" -v b="$c1" -v hz="$HZ" 'BEGIN {printf "%.3f", (b-a)/hz}')" "$ev" >>"$RESULTS"
	log "  $cfg $set: $(printf '%.0f' "$4")/s (none $(printf '%.0f' "$1")/s, ratio $(awk -v a="$4" -v b="$1" 'BEGIN {printf "%.3f", a/b}'))$( [ "$5" != 0 ] && echo ", $5 refused")"
}

CONFIGS=(none noop)
[ $SPIN = 1 ] && CONFIGS+=(noop-spin)
CONFIGS+=(drm-uncovered drm-allowed drm-denied)
[ -z "$FAPO_SKIP" ] && [[ ",$FSLIST," == *,tmpfs,* ]] && CONFIGS+=(fapolicyd)
if [ -n "$ONLY" ]; then
	keep=()
	for c in "${CONFIGS[@]}"; do case ",$ONLY," in *",$c,"*) keep+=("$c") ;; esac; done
	CONFIGS=("${keep[@]}")
fi
SETS=(open1)
[ $TWO = 1 ] && SETS+=(open2)
[ "$EXECS" -gt 0 ] && SETS+=(exec)

if [[ " ${CONFIGS[*]} " == *" fapolicyd "* ]]; then
	# permissive rules in place before it ever runs; the shipped ones kept
	mkdir -p "$W/fapolicyd-backup"
	cp -a /etc/fapolicyd "$W/fapolicyd-backup/etc"
	mkdir -p /var/lib/fapolicyd && cp -a /var/lib/fapolicyd "$W/fapolicyd-backup/var"
	cat >/etc/fapolicyd/fapolicyd.conf <<'EOF'
# written by bench/fanotify-compare.sh for one run; the shipped file is restored after it
permissive = 0
nice_val = 14
q_size = 640
uid = 0
gid = 0
do_stat_report = 0
detailed_report = 0
db_max_size = 50
subj_cache_size = 1549
obj_cache_size = 8191
watch_fs = tmpfs
trust = file
integrity = none
syslog_format = rule,dec,perm,auid,pid,exe,:,path,ftype,trust
rpm_sha256_only = 0
allow_filesystem_mark = 0
EOF
	cat >/etc/fapolicyd/fapolicyd.rules <<'EOF'
# bench/fanotify-compare.sh: allow everything, after one deny rule that never matches
deny perm=any exe=/nonexistent/fanotify-compare : all
allow perm=any all : all
EOF
	fapolicyd --version 2>/dev/null | head -1 >"$W/fapolicyd.version" || true
fi

ALLCONFIGS=("${CONFIGS[@]}")
measure_fs() { # fs
	local fs=$1 k i n cfg s h c
	CONFIGS=()
	for c in "${ALLCONFIGS[@]}"; do [ "$fs" != tmpfs ] && [ "$c" = fapolicyd ] && continue; CONFIGS+=("$c"); done
	RESULTS=$W/results-$fs.tsv
	: >"$RESULTS"
	unset HWM; declare -gA HWM=()
	log "$fs: configurations: ${CONFIGS[*]}; sets: ${SETS[*]}; $PAIRS pairs"
for k in $(seq "$PAIRS"); do
	log "pair $k/$PAIRS"
	n=${#CONFIGS[@]}
	for i in $(seq 0 $(( n - 1 ))); do
		cfg=${CONFIGS[$(( (i + k - 1) % n ))]}   # rotate the order from pair to pair
		if ! start_listener "$cfg"; then
			log "  $cfg did not start; row skipped"
			stop_listener; continue
		fi
		for s in "${SETS[@]}"; do measure "$k" "$cfg" "$s"; done
		if [ -n "$LPID" ]; then
			h=$(hwm_kb "$LPID"); [ "${HWM[$cfg]:-0}" -lt "$h" ] && HWM[$cfg]=$h
			[[ $cfg == drm-* ]] && "$BIN/drmfilter" status --socket "$W/drm.sock" -o json >"$W/$cfg.status.json" 2>/dev/null || true
		fi
		stop_listener
	done
done
for c in "${!HWM[@]}"; do printf 'hwm\t%s\t%s\n' "$c" "${HWM[$c]}" >>"$RESULTS"; done
}

# ---------------------------------------------------------------- the table
describe() {
	local virt=""
	command -v systemd-detect-virt >/dev/null && virt="$(systemd-detect-virt --vm 2>/dev/null || true)/$(systemd-detect-virt --container 2>/dev/null || true)"
	echo "Machine: $(nproc) CPUs ($(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)), kernel $(uname -r)${virt:+, virtualization $virt}, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end."
	echo "Run: $(date -u +'%Y-%m-%d %H:%M UTC'), drmfilter $FCMP_REV, $FILES files of 1 KiB on $1, $PASSES timed passes after one warm-up pass, $PAIRS pairs, $EXECS execs per exec run$( [ -s "$W/fapolicyd.version" ] && echo ", $(cat "$W/fapolicyd.version")")."
}
label() {
	case $1 in
	none) echo "none (no listener)" ;;
	noop) echo "no-op C listener" ;;
	noop-spin) echo "no-op C listener, polls ${SPIN_US} µs after an event" ;;
	drm-uncovered) echo "drmfilter, files not covered" ;;
	drm-allowed) echo "drmfilter, covered, allowed" ;;
	drm-denied) echo "drmfilter, covered, denied" ;;
	fapolicyd) echo "fapolicyd, allow-all rules" ;;
	esac
}
table() { # fs
	describe "$1"
	echo
	local hdr="| configuration | opens/s | ratio to none | refused | CPU s / 100k opens |"
	local sep="|---|---:|---:|---:|---:|"
	[ $TWO = 1 ] && { hdr+=" 2 procs opens/s | 2 procs ratio | 2 procs / 1 proc |"; sep+="---:|---:|---:|"; }
	[ "$EXECS" -gt 0 ] && { hdr+=" execs/s | exec ratio |"; sep+="---:|---:|"; }
	hdr+=" peak RSS MiB |"; sep+="---:|"
	echo "$hdr"; echo "$sep"
	for cfg in "${CONFIGS[@]}"; do
		awk -F'\t' -v cfg="$cfg" -v two=$TWO -v execs="$EXECS" -v label="$(label "$cfg")" '
		function median(arr, n,   i, j, t) {
			if (n == 0) return "";
			for (i = 2; i <= n; i++) { t = arr[i]; for (j = i - 1; j >= 1 && arr[j] > t; j--) arr[j+1] = arr[j]; arr[j+1] = t }
			return n % 2 ? arr[(n+1)/2] : (arr[n/2] + arr[n/2+1]) / 2
		}
		$1 == "hwm" && $2 == cfg { hwm = $3 }
		$2 == cfg && $1 != "hwm" {
			s = $3; c[s]++
			r[s, c[s]] = $5; q[s, c[s]] = $5 / $4; f[s, c[s]] = $6 / $7; u[s, c[s]] = $8 / $9 * 100000
		}
		function lo(s,   i, m) { m = q[s, 1]; for (i = 2; i <= c[s]; i++) if (q[s, i] < m) m = q[s, i]; return m }
		function hi(s,   i, m) { m = q[s, 1]; for (i = 2; i <= c[s]; i++) if (q[s, i] > m) m = q[s, i]; return m }
		function med(kind, s,   a, i) {
			for (i = 1; i <= c[s]; i++) a[i] = (kind == "r" ? r[s, i] : kind == "q" ? q[s, i] : kind == "f" ? f[s, i] : u[s, i]);
			return median(a, c[s])
		}
		END {
			if (!c["open1"]) { printf "| %s | skipped |\n", label; exit }
			line = sprintf("| %s | %.0f | %.3f (%.3f-%.3f) | %s | %s |", label, med("r", "open1"), med("q", "open1"), lo("open1"), hi("open1"),
				(med("f", "open1") > 0 ? sprintf("%.0f%%", 100 * med("f", "open1")) : "0"),
				(cfg == "none" ? "-" : sprintf("%.2f", med("u", "open1"))))
			if (two) line = line sprintf(" %.0f | %.3f | %.2f |", med("r", "open2"), med("q", "open2"), med("r", "open2") / med("r", "open1"))
			if (execs > 0) line = line sprintf(" %.0f | %.3f |", med("r", "exec"), med("q", "exec"))
			line = line (hwm ? sprintf(" %.1f |", hwm / 1024) : " - |")
			print line
		}' "$RESULTS"
	done
	echo
	# the issue's comparisons, pair by pair (same pair, so the same host load)
	awk -F'\t' '
	function median(arr, n,   i, j, t) {
		for (i = 2; i <= n; i++) { t = arr[i]; for (j = i - 1; j >= 1 && arr[j] > t; j--) arr[j+1] = arr[j]; arr[j+1] = t }
		return n % 2 ? arr[(n+1)/2] : (arr[n/2] + arr[n/2+1]) / 2
	}
	$1 != "hwm" { rate[$1, $2, $3] = $5; if ($1 > k) k = $1 }
	END {
		split("drm-allowed fapolicyd 1.5|drm-allowed noop 1|drm-denied drm-allowed 1", cmp, "|")
		for (c in cmp) order[c] = cmp[c]
		for (c = 1; c <= 3; c++) {
			split(order[c], f, " ")
			for (s = 1; s <= 2; s++) {
				set = s == 1 ? "open1" : "open2"; n = 0
				for (i = 1; i <= k; i++) if (rate[i, f[1], set] > 0 && rate[i, f[2], set] > 0) a[++n] = rate[i, f[1], set] / rate[i, f[2], set]
				if (n) printf "- %s / %s, %s: %.2f (median of %d pairs; issue 6 asks at least %s)\n", f[1], f[2], (set == "open1" ? "1 process" : "2 processes"), median(a, n), n, f[3]
			}
		}
	}' "$RESULTS"
	[ -n "$FAPO_SKIP" ] && { echo; echo "fapolicyd row skipped: $FAPO_SKIP"; }
	[ "$1" != tmpfs ] && [ -z "$FAPO_SKIP" ] && { echo; echo "no fapolicyd row on $1: it would watch every $1 mount of its namespace, / included"; }
	echo
	echo "Ratios are medians of per-pair ratios against the no-listener run of the same pair (on the identical copy of the files); rates are medians; the range after the 1-process ratio is the lowest and highest of the pairs. CPU is the listener's utime+stime over the whole workload run, warm-up pass included, per 100,000 opens the workload made."
}
: >"$W/table.md"
: >"$W/raw.tsv"
IFS=, read -r -a FSES <<<"$FSLIST"
for fs in "${FSES[@]}"; do
	setup_fs "$fs"
	measure_fs "$fs"
	teardown_fs
	{ echo "### $fs"; echo; table "$fs"; echo; } | tee -a "$W/table.md"
	sed "s/^/$fs\t/" "$RESULTS" >>"$W/raw.tsv"
done
[ -n "$OUTPUT" ] && cp "$W/table.md" "$OUTPUT"
[ -n "$RAW" ] && cp "$W/raw.tsv" "$RAW"
for c in drm-uncovered drm-allowed drm-denied; do
	[ -s "$W/$c.status.json" ] && log "$c counters (last pair): $(tr -d ' \n' <"$W/$c.status.json" | grep -o '"counters":{[^}]*}')"
done
exit 0
