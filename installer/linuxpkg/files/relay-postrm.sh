#!/bin/sh
# deskside-relay postrm (deb: remove, purge, upgrade; rpm %postun: 0 erase,
# 1 upgrade). Purge deletes the relay's data (CA, keys, database) and its
# user; rpm has no purge, so an erased relay keeps both.
set -e
case "$1" in
purge)
	rm -rf /var/lib/deskside-relay
	rm -f /etc/deskside/relay.yaml /etc/deskside/relay.yaml.dpkg-old /etc/deskside/relay.yaml.dpkg-dist
	rmdir /etc/deskside 2>/dev/null || true
	if getent passwd deskside >/dev/null; then
		userdel deskside || true
	fi
	if getent group deskside >/dev/null; then
		groupdel deskside || true
	fi
	;;
esac
case "$1" in
remove|purge|0)
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload || true
	fi
	;;
esac
exit 0
