package install

// The fakes the script meets. State lives in $FAKE_STATE: "active" and
// "failed" stand for the unit's state, loaded/ for the policies the agent
// loaded at its last start or reload, calls for systemctl's arguments, and
// "fail-start" makes the next start fail.

// fakeAgent is the "binary" inside the test package: it answers
// `policy check DIR` and `status` the way drmfilter does (the lines the
// script reads), with the hash of the policy files' contents.
const fakeAgent = `#!/bin/sh
hash_of() { cat "$1"/*.yaml 2>/dev/null | sha256sum | cut -d' ' -f1; }
case "$1 ${2:-}" in
"policy check")
	if grep -Hn 'effect: permit' "$3"/*.yaml >"$FAKE_STATE/bad" 2>/dev/null; then
		sed 's/^\([^:]*\):\([0-9]*\):.*/\1:\2:15: spec.rules[0].effect: unknown effect "permit"; expected one of allow, deny, audit/' "$FAKE_STATE/bad" >&2
		exit 3
	fi
	echo "ok  fake"
	echo "1 policies, 1 rules, hash sha256:$(hash_of "$3")"
	;;
"policy apply")
	# drmfilter policy apply --replace [--key K] FILE...: the agent writes
	# the set into its policy directory.
	shift 2
	dir="$DRMFILTER_INSTALL_ROOT/etc/drmfilter/policies"
	echo "policy apply $*" >>"$FAKE_STATE/admin"
	rm -f "$dir"/*.yaml "$dir"/*.yml
	while [ $# -gt 0 ]; do
		case $1 in
		--replace) ;;
		--key) shift ;;
		*) cp "$1" "$dir/" ;;
		esac
		shift
	done
	;;
"config apply")
	shift 2
	echo "config apply $*" >>"$FAKE_STATE/admin"
	while [ $# -gt 1 ]; do shift; done
	cp "$1" "$DRMFILTER_INSTALL_ROOT/etc/drmfilter/config.yaml"
	;;
"status "*)
	[ -e "$FAKE_STATE/active" ] || { echo "query status: dial unix /run/drmfilter/status.sock: connect: no such file or directory" >&2; exit 1; }
	echo "drmfilter fake, pid 1, up 1s, ready true"
	echo "policy generation 1, 1 rules, sha256:$(hash_of "$FAKE_STATE/loaded"), loaded 2026-01-01 00:00:00"
	;;
*) echo "fake drmfilter: unexpected $*" >&2; exit 2 ;;
esac
`

const fakeSystemctl = `#!/bin/sh
echo "$*" >>"$FAKE_STATE/calls"
[ "$1" = --quiet ] && shift
load() { rm -rf "$FAKE_STATE/loaded"; cp -r "$DRMFILTER_INSTALL_ROOT/etc/drmfilter/policies" "$FAKE_STATE/loaded"; }
case $1 in
is-active) [ -e "$FAKE_STATE/active" ] ;;
is-failed) [ -e "$FAKE_STATE/failed" ] ;;
reset-failed) rm -f "$FAKE_STATE/failed" ;;
start | restart)
	if [ -e "$FAKE_STATE/fail-start" ]; then
		rm -f "$FAKE_STATE/active"; touch "$FAKE_STATE/failed"
	else
		load; touch "$FAKE_STATE/active"
	fi ;;
reload) [ -e "$FAKE_STATE/active" ] && load ;;
*) : ;;
esac
`

const fakeJournalctl = `#!/bin/sh
echo "drmfilter[42]: fanotify_init: operation not permitted (fake journal)"
`
