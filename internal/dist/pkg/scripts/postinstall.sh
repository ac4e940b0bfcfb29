#!/bin/sh
# drmfilter post-install script, shared by the .deb (postinst) and the .rpm
# (%post). It reloads systemd's units and enables drmfilter.service when
# systemd runs the machine; on an upgrade it restarts a running agent so the
# new binary takes over. A first install does not start the agent: whoever
# installs places the policies first (scripts/install.sh starts it).
#
# Arguments: deb: "configure" and the previously configured version (empty
# on a first install); rpm: the number of installed instances after this
# transaction (1: install, 2 or more: upgrade).
# DPKG_ROOT is honoured for installs into another root (dpkg --root with
# --force-script-chrootless): systemd is only called when it runs there.
set -e

case "${1:-}" in
configure) if [ -n "${2:-}" ]; then action=upgrade; else action=install; fi ;;
1) action=install ;;
[0-9]*) action=upgrade ;;
*) exit 0 ;; # abort-upgrade, abort-remove, abort-deconfigure: nothing was stopped
esac

if [ -d "${DPKG_ROOT:-}/run/systemd/system" ]; then
	systemctl daemon-reload || :
	systemctl enable drmfilter.service || :
	if [ "$action" = upgrade ]; then
		systemctl try-restart drmfilter.service || :
	fi
fi
exit 0
