#!/bin/sh
# deskside-agent postrm (deb: remove, purge, upgrade; rpm %postun: 0 erase,
# 1 upgrade). rpm has no purge: an erased agent keeps its identity in
# /var/lib/deskside-agent, so a reinstall reconnects without enrolling.
set -e
case "$1" in
purge)
	rm -rf /var/lib/deskside-agent /run/deskside-agent
	rm -f /etc/deskside/agent.env /etc/deskside/agent.env.dpkg-old /etc/deskside/agent.env.dpkg-dist
	rmdir /etc/deskside 2>/dev/null || true
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
