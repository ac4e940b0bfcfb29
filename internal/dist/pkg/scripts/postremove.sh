#!/bin/sh
# drmfilter post-remove script, shared by the .deb (postrm) and the .rpm
# (%postun). It makes systemd forget the removed unit and removes the
# agent's enforcement record (/var/lib/drmfilter, bpf.recordFile): the
# pre-remove script unloaded the programs, so no later boot has anything
# to compare with it. Policies under /etc/drmfilter/policies and audit
# logs under /var/log/drmfilter stay after a removal; a Debian purge
# removes only the configuration files dpkg itself installed.
#
# Arguments: deb: "remove", "purge", "upgrade ..." and others; rpm: the
# number of instances left (0: erase, 1: upgrade).
set -e

case "${1:-}" in
remove | purge | 0) ;;
*) exit 0 ;;
esac

rm -f "${DPKG_ROOT:-}/var/lib/drmfilter/enforcement.json"
rmdir "${DPKG_ROOT:-}/var/lib/drmfilter" 2>/dev/null || :

if [ -d "${DPKG_ROOT:-}/run/systemd/system" ]; then
	systemctl daemon-reload || :
fi
exit 0
