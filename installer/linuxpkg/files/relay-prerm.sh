#!/bin/sh
# deskside-relay prerm (deb: remove, upgrade; rpm %preun: 0 erase, 1 upgrade).
set -e
case "$1" in
remove|0)
	if [ -d /run/systemd/system ]; then
		systemctl stop deskside-relay.service || true
	fi
	if command -v systemctl >/dev/null 2>&1; then
		systemctl disable deskside-relay.service >/dev/null 2>&1 || true
	fi
	;;
esac
exit 0
