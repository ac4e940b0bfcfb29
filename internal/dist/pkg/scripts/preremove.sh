#!/bin/sh
# drmfilter pre-remove script, shared by the .deb (prerm) and the .rpm
# (%preun). On removal it stops and disables the agent; on an upgrade it
# leaves it running (the post-install script restarts it). Policies and
# audit logs are never touched here.
#
# Arguments: deb: "remove", "upgrade NEW-VERSION" or "deconfigure ..."; rpm:
# the number of instances left after this transaction (0: erase, 1: upgrade).
set -e

case "${1:-}" in
remove | 0) ;;
*) exit 0 ;;
esac

if [ -d "${DPKG_ROOT:-}/run/systemd/system" ]; then
	systemctl stop drmfilter.service || :
	systemctl disable drmfilter.service || :
fi
exit 0
