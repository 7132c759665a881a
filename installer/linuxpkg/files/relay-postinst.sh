#!/bin/sh
# deskside-relay postinst (deb: configure; rpm %post: 1 install, 2 upgrade).
set -e
case "$1" in configure|1|2) ;; *) exit 0 ;; esac
DATA=/var/lib/deskside-relay
install -d -o deskside -g deskside -m 0750 "$DATA"
chown deskside:deskside "$DATA"
chmod 0750 "$DATA"
if command -v systemctl >/dev/null 2>&1; then
	systemctl enable deskside-relay.service >/dev/null 2>&1 || echo "deskside-relay: systemctl enable deskside-relay failed; enable it by hand" >&2
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload
		systemctl restart deskside-relay.service
		echo "deskside-relay: started; the first technician's password is in: journalctl -u deskside-relay"
	fi
fi
exit 0
