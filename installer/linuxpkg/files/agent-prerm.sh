#!/bin/sh
# deskside-agent prerm (deb: remove, upgrade; rpm %preun: 0 erase, 1 upgrade).
set -e
case "$1" in
remove|0)
	if [ -d /run/systemd/system ]; then
		systemctl stop deskside-agent.service || true
	fi
	if command -v systemctl >/dev/null 2>&1; then
		systemctl disable deskside-agent.service >/dev/null 2>&1 || true
	fi
	;;
esac
exit 0
