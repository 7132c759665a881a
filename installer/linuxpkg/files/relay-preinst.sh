#!/bin/sh
# deskside-relay preinst (deb: install, upgrade; rpm %pre: 1 install, 2 upgrade):
# the relay's system user, before its files are unpacked.
set -e
case "$1" in install|upgrade|1|2) ;; *) exit 0 ;; esac
DATA=/var/lib/deskside-relay
if ! getent passwd deskside >/dev/null; then
	if [ -f /etc/debian_version ] && command -v adduser >/dev/null 2>&1; then
		adduser --system --group --home "$DATA" --no-create-home \
			--shell /usr/sbin/nologin --gecos "Deskside relay" deskside >/dev/null
	else
		useradd --system --user-group --home-dir "$DATA" --no-create-home \
			--shell /usr/sbin/nologin --comment "Deskside relay" deskside
	fi
fi
exit 0
