package action

import "errors"

var (
	// ErrBadRequest is wrapped by errors about the request itself: no
	// action, an invalid service name, an invalid delay.
	ErrBadRequest = errors.New("action: bad request")

	// ErrRefused is wrapped when KillProcess targets a process the agent
	// will not end: pid 1 or lower, the agent itself or its ancestors.
	ErrRefused = errors.New("action: refused")

	// ErrNoProcess is wrapped when KillProcess names no running process.
	ErrNoProcess = errors.New("action: no such process")

	// ErrNoSystemd is wrapped when RestartService finds no running
	// systemd to ask.
	ErrNoSystemd = errors.New("action: systemd is not running here")

	// ErrNotSupported is wrapped by actions this platform or this machine
	// cannot do (services, DNS and reboot on macOS; FlushDns without a
	// local DNS cache).
	ErrNotSupported = errors.New("action: not supported here")
)
