#!/bin/sh
# install.sh: install or update the drmfilter agent on one Linux machine.
# The cloud rollouts (Azure Custom Script extension, AWS SSM Run Command,
# Auto Scaling user data) run it; it works the same by hand.
#
# Usage (as root):
#   install.sh --package-url URL --sha256 HEX
#              [--policy-url URL]... [--policy-file FILE]...
#              [--mode audit|enforce] [--timeout SECONDS]
#
#   --package-url URL   the drmfilter .deb or .rpm (https://, http:// or
#                       file://); a query string (a SAS token, a presigned
#                       URL) is never printed
#   --sha256 HEX        its SHA-256; on a mismatch nothing is installed
#   --policy-url URL    a policy file to install (repeatable)
#   --policy-file FILE  a local policy file to install (repeatable)
#   --mode MODE         set the agent's mode in /etc/drmfilter/config.yaml
#   --timeout SECONDS   how long to wait for the agent to answer (default 60)
#
# What it does, in order:
#   1. detects the package manager (dpkg, else rpm) and the architecture;
#   2. downloads the package (curl or wget, with retries) and checks its
#      SHA-256 and architecture;
#   3. installs it with dpkg -i or rpm -U, unless the same package (same
#      version and SHA-256) is already installed;
#   4. when policies are given, checks them together with
#      `drmfilter policy check` and only then makes them the whole content of
#      /etc/drmfilter/policies (the previous files are kept in
#      /var/lib/drmfilter/policies.previous); an invalid policy stops the
#      script before anything is changed and before any restart;
#   5. enables drmfilter.service and starts it, restarts it (new mode) or
#      reloads it (new policies); a new package restarts a running agent
#      itself (its post-install script); when nothing changed and the agent
#      runs, it is left alone;
#   6. waits until `drmfilter status` answers, with the new policies' hash
#      when policies were placed, and prints the status.
# Running it twice with the same arguments changes nothing the second time.
#
# Exit status: 0 done; 1 other failure; 2 usage; 3 download failed;
# 4 checksum or package mismatch (nothing installed); 5 package install
# failed; 6 invalid policy (nothing changed); 7 the agent did not start or
# answer (the journal's tail is printed).
#
# Environment: DRMFILTER_INSTALL_ROOT (default /) installs into another root
# directory with dpkg --root or rpm --root: for tests and image builds.
# DRMFILTER_ADMIN_KEY names the admin private key when the agent's
# configuration has adminKeys: a running agent takes new policies and
# configuration only through its admin socket.
set -eu

prog=drmfilter-install
ROOT=${DRMFILTER_INSTALL_ROOT:-/}
ROOT=${ROOT%/}
UNIT=drmfilter.service
POLICY_DIR=$ROOT/etc/drmfilter/policies
CONFIG=$ROOT/etc/drmfilter/config.yaml
STATE_DIR=$ROOT/var/lib/drmfilter
BINARY=$ROOT/usr/bin/drmfilter

log() { printf '%s: %s\n' "$prog" "$*"; }
# agent_answers: a running agent answers on its status socket; then it
# changes its own policies and configuration (drmfilter policy apply,
# config apply), which on the bpf backend no other process may.
agent_answers() { [ -x "$BINARY" ] && "$BINARY" status >/dev/null 2>&1; }
# key_flag: --key FILE when DRMFILTER_ADMIN_KEY names the admin key.
key_flag() { if [ -n "${DRMFILTER_ADMIN_KEY:-}" ]; then printf -- '--key %s' "$DRMFILTER_ADMIN_KEY"; fi; }
die() {
	code=$1
	shift
	printf '%s: error: %s\n' "$prog" "$*" >&2
	exit "$code"
}
usage() {
	sed -n '6,18p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}
# redact drops a URL's query string and fragment, where tokens live.
redact() { printf '%s' "$1" | sed 's/[?#].*$//'; }

package_url='' sha256='' mode='' timeout=60 policies=''
nl='
'
while [ $# -gt 0 ]; do
	case $1 in
	--package-url | --sha256 | --policy-url | --policy-file | --mode | --timeout)
		[ $# -ge 2 ] || die 2 "$1 needs a value"
		case $1 in
		--package-url) package_url=$2 ;;
		--sha256) sha256=$2 ;;
		--policy-url) policies="$policies$2$nl" ;;
		--policy-file)
			[ -f "$2" ] || die 2 "--policy-file $2: no such file"
			policies="${policies}file://$(cd "$(dirname "$2")" && pwd)/$(basename "$2")$nl"
			;;
		--mode) mode=$2 ;;
		--timeout) timeout=$2 ;;
		esac
		shift 2
		;;
	-h | --help) usage ;;
	*) die 2 "unknown argument $1 (see --help)" ;;
	esac
done
[ -n "$package_url" ] || die 2 "--package-url is required"
[ -n "$sha256" ] || die 2 "--sha256 is required"
sha256=$(printf '%s' "$sha256" | tr 'A-F' 'a-f')
case $sha256 in
*[!0-9a-f]*) die 2 "--sha256 must be 64 hexadecimal digits" ;;
esac
[ ${#sha256} -eq 64 ] || die 2 "--sha256 must be 64 hexadecimal digits"
case $mode in
'' | audit | enforce) ;;
*) die 2 "--mode must be audit or enforce, not $mode" ;;
esac
case $timeout in
'' | *[!0-9]*) die 2 "--timeout must be a number of seconds" ;;
esac
if [ -z "$ROOT" ] && [ "$(id -u)" != 0 ]; then
	die 1 "run as root"
fi

# One install at a time (a retried cloud command may overlap the first).
if command -v flock >/dev/null 2>&1; then
	mkdir -p "$STATE_DIR"
	exec 9>"$STATE_DIR/install.lock"
	flock -w 600 9 || die 1 "another install.sh holds $STATE_DIR/install.lock"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/drmfilter-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 1' HUP INT TERM

# --- 1. the machine -----------------------------------------------------
if command -v dpkg >/dev/null 2>&1 && command -v dpkg-deb >/dev/null 2>&1; then
	format=deb
elif command -v rpm >/dev/null 2>&1; then
	format=rpm
else
	die 1 "neither dpkg nor rpm is installed: cannot install a package here"
fi
case $(uname -m) in
x86_64 | amd64) arch=amd64 ;;
aarch64 | arm64) arch=arm64 ;;
*) die 1 "unsupported architecture $(uname -m) (drmfilter is built for amd64 and arm64)" ;;
esac
log "this machine: $format packages, $arch"

# --- 2. download and verify ---------------------------------------------
# fetch URL DEST: file:// copies; http(s) uses curl or wget with retries.
fetch() {
	case $1 in
	file://*) cp -- "${1#file://}" "$2" || die 3 "cannot read $(redact "$1")" ;;
	http://* | https://*)
		if command -v curl >/dev/null 2>&1; then
			curl -fsSL --retry 5 --retry-delay 2 --retry-connrefused --connect-timeout 20 -o "$2" "$1" ||
				die 3 "download of $(redact "$1") failed"
		elif command -v wget >/dev/null 2>&1; then
			wget -q --tries=5 --waitretry=2 --timeout=20 -O "$2" "$1" ||
				die 3 "download of $(redact "$1") failed"
		else
			die 3 "neither curl nor wget is installed"
		fi
		;;
	*) die 2 "unsupported URL $(redact "$1") (want https://, http:// or file://)" ;;
	esac
}

pkgfile=$work/drmfilter.$format
log "downloading $(redact "$package_url")"
fetch "$package_url" "$pkgfile"
actual=$(sha256sum "$pkgfile" | cut -d' ' -f1)
if [ "$actual" != "$sha256" ]; then
	die 4 "checksum mismatch for $(redact "$package_url"): expected sha256 $sha256, got $actual; nothing was installed"
fi
log "sha256 $actual verified"

if [ "$format" = deb ]; then
	name=$(dpkg-deb -f "$pkgfile" Package 2>/dev/null) || die 4 "$(redact "$package_url") is not a .deb package"
	version=$(dpkg-deb -f "$pkgfile" Version)
	pkgarch=$(dpkg-deb -f "$pkgfile" Architecture)
else
	name=$(rpm -qp --nosignature --qf '%{NAME}' "$pkgfile" 2>/dev/null) || die 4 "$(redact "$package_url") is not an .rpm package"
	version=$(rpm -qp --nosignature --qf '%{VERSION}-%{RELEASE}' "$pkgfile")
	pkgarch=$(rpm -qp --nosignature --qf '%{ARCH}' "$pkgfile")
	case $pkgarch in x86_64) pkgarch=amd64 ;; aarch64) pkgarch=arm64 ;; esac
fi
[ "$name" = drmfilter ] || die 4 "the package is $name, not drmfilter; nothing was installed"
[ "$pkgarch" = "$arch" ] || die 4 "the package is built for $pkgarch, this machine is $arch; nothing was installed"

# --- 3. install ---------------------------------------------------------
if [ "$format" = deb ]; then
	if [ -n "$ROOT" ]; then
		mkdir -p "$ROOT/var/log"
		set -- --root="$ROOT" --force-script-chrootless --log=/dev/null
		installed=$(dpkg-query --admindir="$ROOT/var/lib/dpkg" -W -f '${db:Status-Abbrev} ${Version}' drmfilter 2>/dev/null || :)
	else
		set --
		installed=$(dpkg-query -W -f '${db:Status-Abbrev} ${Version}' drmfilter 2>/dev/null || :)
	fi
	case $installed in "ii  "*) installed=${installed#ii  } ;; *) installed= ;; esac
else
	if [ -n "$ROOT" ]; then set -- --root="$ROOT"; else set --; fi
	installed=$(rpm "$@" -q --qf '%{VERSION}-%{RELEASE}' drmfilter 2>/dev/null || :)
	case $installed in *" "*) installed= ;; esac # "package drmfilter is not installed"
fi
recorded=$(cat "$STATE_DIR/package.sha256" 2>/dev/null || :)
package_changed=no
if [ "$installed" = "$version" ] && [ "$recorded" = "$sha256" ]; then
	log "drmfilter $version is already installed from this package"
else
	if [ -n "$installed" ]; then
		log "updating drmfilter $installed to $version"
	else
		log "installing drmfilter $version"
	fi
	if [ "$format" = deb ]; then
		DEBIAN_FRONTEND=noninteractive dpkg "$@" --force-confdef --force-confold -i "$pkgfile" >"$work/pkg.log" 2>&1 ||
			{ cat "$work/pkg.log" >&2; die 5 "dpkg -i failed"; }
	else
		rpm "$@" -U --replacepkgs "$pkgfile" >"$work/pkg.log" 2>&1 ||
			{ cat "$work/pkg.log" >&2; die 5 "rpm -U failed"; }
	fi
	mkdir -p "$STATE_DIR"
	printf '%s\n' "$sha256" >"$STATE_DIR/package.sha256"
	package_changed=yes
fi
[ -x "$BINARY" ] || die 5 "$BINARY is missing after the install"

# --- 4. policies --------------------------------------------------------
# listing DIR prints "sha256  name" for the policy files the agent reads.
listing() {
	(
		cd "$1" || exit 0
		for f in *.yaml *.yml; do
			if [ -f "$f" ]; then sha256sum -- "$f"; fi
		done
	) | sort
}

policies_changed=no
expected_hash=
if [ -n "$policies" ]; then
	stage=$work/policies
	mkdir "$stage"
	printf '%s' "$policies" >"$work/policy-urls"
	while IFS= read -r url; do
		base=$(basename "$(redact "$url")")
		case $base in *.yaml | *.yml) ;; *) base=$base.yaml ;; esac
		[ ! -e "$stage/$base" ] || die 2 "two policies are named $base"
		log "policy $base from $(redact "$url")"
		fetch "$url" "$stage/$base"
	done <"$work/policy-urls"
	if ! "$BINARY" policy check "$stage" >"$work/check.out" 2>&1; then
		sed "s|$stage/||g" "$work/check.out" >&2
		die 6 "the policies are invalid; nothing was changed and the agent was not restarted"
	fi
	expected_hash=$(sed -n 's/.*, hash \(sha256:[0-9a-f]*\)$/\1/p' "$work/check.out")
	if [ "$(listing "$stage")" = "$(listing "$POLICY_DIR")" ]; then
		log "the policies are already in place"
	else
		mkdir -p "$POLICY_DIR" "$STATE_DIR"
		rm -rf "$STATE_DIR/policies.previous"
		mkdir "$STATE_DIR/policies.previous"
		for f in "$POLICY_DIR"/*.yaml "$POLICY_DIR"/*.yml; do
			if [ -f "$f" ]; then cp -p -- "$f" "$STATE_DIR/policies.previous/"; fi
		done
		if agent_answers; then
			# The running agent writes its policies itself, the whole set in
			# one change: on the bpf backend its policy directory is sealed
			# against every other process, root included.
			# shellcheck disable=SC2046 # the staged files' names are ours
			if ! "$BINARY" policy apply --replace $(key_flag) "$stage"/* >"$work/apply.out" 2>&1; then
				cat "$work/apply.out" >&2
				die 1 "the agent did not take the policies (with adminKeys configured, set DRMFILTER_ADMIN_KEY)"
			fi
		else
			# New files go in by rename, each atomic; then the ones not in
			# the set go. The agent loads a set all-or-nothing and is
			# reloaded below, so a transient mix is never what it ends up
			# with.
			for f in "$stage"/*; do
				b=$(basename "$f")
				cp -- "$f" "$POLICY_DIR/.$b.new"
				chmod 0644 "$POLICY_DIR/.$b.new"
				mv -f -- "$POLICY_DIR/.$b.new" "$POLICY_DIR/$b"
			done
			for f in "$POLICY_DIR"/*.yaml "$POLICY_DIR"/*.yml; do
				if [ -f "$f" ] && [ ! -e "$stage/$(basename "$f")" ]; then rm -f -- "$f"; fi
			done
		fi
		log "placed $(listing "$stage" | wc -l | tr -d ' ') policies in ${POLICY_DIR#"$ROOT"} (previous ones in ${STATE_DIR#"$ROOT"}/policies.previous)"
		policies_changed=yes
	fi
fi

config_changed=no
if [ -n "$mode" ]; then
	[ -f "$CONFIG" ] || die 1 "${CONFIG#"$ROOT"} is missing"
	if grep -q '^mode:' "$CONFIG"; then
		sed "s/^mode:[^#]*/mode: $mode /" "$CONFIG" >"$work/config.yaml"
	else
		{ cat "$CONFIG"; printf 'mode: %s\n' "$mode"; } >"$work/config.yaml"
	fi
	if ! cmp -s "$work/config.yaml" "$CONFIG"; then
		if agent_answers; then
			# shellcheck disable=SC2046
			if ! "$BINARY" config apply $(key_flag) "$work/config.yaml" >"$work/apply.out" 2>&1; then
				cat "$work/apply.out" >&2
				die 1 "the agent did not take the configuration (with adminKeys configured, set DRMFILTER_ADMIN_KEY)"
			fi
		else
			cat "$work/config.yaml" >"$CONFIG"
		fi
		log "mode set to $mode in ${CONFIG#"$ROOT"}"
		config_changed=yes
	fi
fi

# --- 5. the service -----------------------------------------------------
if [ ! -d "$ROOT/run/systemd/system" ]; then
	die 7 "systemd is not running here: drmfilter is installed but not started (run: drmfilter run --config /etc/drmfilter/config.yaml)"
fi
systemctl daemon-reload
systemctl enable --quiet "$UNIT"
if ! systemctl is-active --quiet "$UNIT"; then
	log "starting drmfilter"
	systemctl reset-failed "$UNIT" 2>/dev/null || :
	systemctl restart "$UNIT" || :
elif [ "$config_changed" = yes ]; then
	log "restarting drmfilter"
	systemctl restart "$UNIT" || :
elif [ "$policies_changed" = yes ]; then
	# A new package, if any, was already restarted by its post-install
	# script (systemctl try-restart); only the policies remain.
	log "reloading drmfilter's policies"
	systemctl reload "$UNIT" || :
elif [ "$package_changed" = yes ]; then
	log "the package's post-install script restarted drmfilter"
else
	log "drmfilter is running and nothing changed"
fi

# --- 6. wait for the agent ----------------------------------------------
failed_start() {
	printf '%s: error: %s\n' "$prog" "$1" >&2
	if command -v journalctl >/dev/null 2>&1; then
		printf '%s: the last lines of its journal:\n' "$prog" >&2
		journalctl -u "$UNIT" -n 40 --no-pager >&2 || :
	fi
	exit 7
}
waited=0
while :; do
	if systemctl is-failed --quiet "$UNIT"; then
		failed_start "drmfilter failed to start"
	fi
	if "$BINARY" status >"$work/status" 2>&1; then
		if [ -z "$expected_hash" ] || grep -q "$expected_hash" "$work/status"; then
			break
		fi
	fi
	if [ "$waited" -ge "$timeout" ]; then
		if [ -n "$expected_hash" ] && [ -s "$work/status" ]; then
			cat "$work/status" >&2
			failed_start "drmfilter did not load the new policies ($expected_hash) within ${timeout}s"
		fi
		failed_start "drmfilter did not answer \`drmfilter status\` within ${timeout}s"
	fi
	sleep 1
	waited=$((waited + 1))
done
cat "$work/status"
log "done: drmfilter $version is running"
