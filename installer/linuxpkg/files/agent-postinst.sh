#!/bin/sh
# deskside-agent postinst (deb: configure; rpm %post: 1 install, 2 upgrade).
set -e
case "$1" in configure|1|2) ;; *) exit 0 ;; esac

STATE=/var/lib/deskside-agent
ENV_FILE=/etc/deskside/agent.env
install -d -m 0700 "$STATE"

# envvalue KEY: the last KEY=VALUE of the env file, quotes removed (not
# sourced: the file is read, never run).
envvalue() {
	[ -r "$ENV_FILE" ] || return 0
	sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*//p" "$ENV_FILE" | tail -n 1 | sed -e 's/[[:space:]]*$//' -e "s/^[\"']//" -e "s/[\"']\$//"
}
# The installer's environment wins over the file (unattended installs).
relay=${DESKSIDE_RELAY:-$(envvalue DESKSIDE_RELAY)}
token=${DESKSIDE_TOKEN:-$(envvalue DESKSIDE_TOKEN)}
releasekey=${DESKSIDE_RELEASE_KEY:-$(envvalue DESKSIDE_RELEASE_KEY)}

# The release key agents install updates signed with (ADR 33): pinned here,
# by root, and nowhere else. A wrong fingerprint fails the install: fix it
# and run the install again (dpkg --configure deskside-agent).
if [ -n "$releasekey" ]; then
	if ! /usr/bin/deskside-agent update pin "$releasekey" --state "$STATE"; then
		echo "deskside-agent: pinning DESKSIDE_RELEASE_KEY ($ENV_FILE or the environment) failed (above): give the fingerprint \`deskside release keygen\` printed, then run dpkg --configure deskside-agent (rpm: install again)" >&2
		exit 1
	fi
elif [ -z "$(cat "$STATE/release.pin" 2>/dev/null)" ]; then
	echo "deskside-agent: auto-update is off: no DESKSIDE_RELEASE_KEY in $ENV_FILE or the environment; turn it on with: deskside-agent update pin FINGERPRINT (from \`deskside release keygen\`)"
fi

if [ -f "$STATE/agent.json" ]; then
	echo "deskside-agent: already enrolled, keeping the identity in $STATE"
elif [ -n "$relay" ] && [ -n "$token" ]; then
	# The token goes through the environment, not the command line (ps).
	if DESKSIDE_TOKEN="$token" /usr/bin/deskside-agent enroll --relay "$relay" --state "$STATE"; then
		:
	else
		echo "deskside-agent: enrolling with $relay failed (above); the service waits: enroll with deskside-agent enroll --relay HOST:PORT --token TOKEN" >&2
	fi
else
	echo "deskside-agent: not enrolled: no DESKSIDE_RELAY and DESKSIDE_TOKEN in $ENV_FILE or the environment; the service waits for: deskside-agent enroll --relay HOST:PORT --token TOKEN"
fi

if command -v systemctl >/dev/null 2>&1; then
	systemctl enable deskside-agent.service >/dev/null 2>&1 || echo "deskside-agent: systemctl enable deskside-agent failed; enable it by hand" >&2
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload
		systemctl restart deskside-agent.service
	fi
fi
exit 0
