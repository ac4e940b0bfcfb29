#!/bin/sh
# drmfilter pre-remove script, shared by the .deb (prerm) and the .rpm
# (%preun). Policies and audit logs are never touched here.
#
# On removal it unloads the agent's BPF programs (pinned, they would go on
# enforcing without an agent) and stops and disables the agent. On an
# upgrade it leaves the agent running, and tells it (or its pinned
# programs) to trust the new executable the package installs at
# /usr/bin/drmfilter: the post-install script's restart then hands the
# programs over with no moment unenforced.
#
# When the agent was configured with adminKeys, both need a signed request:
# set DRMFILTER_ADMIN_KEY to the private key's file.
#
# Arguments: deb: "remove", "upgrade NEW-VERSION" or "deconfigure ..."; rpm:
# the number of instances left after this transaction (0: erase, 1: upgrade).
set -e

root=${DPKG_ROOT:-}
drmfilter=$root/usr/bin/drmfilter
key=${DRMFILTER_ADMIN_KEY:-}

# agent_or_pins: an agent answers on the admin socket, or its programs are
# pinned.
agent_or_pins() {
	[ -x "$drmfilter" ] && { [ -S "$root/run/drmfilter/admin.sock" ] || [ -e "$root/sys/fs/bpf/drmfilter/map_guard" ]; }
}

case "${1:-}" in
remove | 0)
	if agent_or_pins; then
		if ! "$drmfilter" stop --unload ${key:+--key "$key"}; then
			echo "drmfilter: the agent could not be stopped with its programs unloaded; nothing was removed." >&2
			echo "drmfilter: if its configuration names adminKeys, set DRMFILTER_ADMIN_KEY to the private key's file." >&2
			exit 1
		fi
	fi
	if [ -d "$root/run/systemd/system" ]; then
		systemctl stop drmfilter.service || :
		systemctl disable drmfilter.service || :
	fi
	;;
upgrade | 1)
	if agent_or_pins; then
		if ! "$drmfilter" upgrade --await /usr/bin/drmfilter ${key:+--key "$key"}; then
			echo "drmfilter: the agent could not be told to trust the new executable; the upgrade stops here." >&2
			echo "drmfilter: if its configuration names adminKeys, set DRMFILTER_ADMIN_KEY to the private key's file." >&2
			exit 1
		fi
	fi
	;;
esac
exit 0
